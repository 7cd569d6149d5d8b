"""Failed logins: how many guesses one client may make at one account.

Argon2 makes each guess slow, but not slow enough against a list of common
passwords; after :attr:`LoginAttempts.limit` failures for the same username
from the same client address within the window, further tries are refused
until the oldest failure ages out. The key is the pair, not the username
alone, so a stranger cannot lock a colleague out from another network.

State lives in the process's memory and is bounded (least recently failed
keys are forgotten first); with several web processes each keeps its own
count, which multiplies the allowance but never blocks a right password
longer than the window.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Final

DEFAULT_LIMIT: Final = 10
DEFAULT_WINDOW_S: Final = 15 * 60.0
DEFAULT_CAPACITY: Final = 50_000


@dataclass
class LoginAttempts:
    """Sliding-window count of failed logins per (username, client address)."""

    limit: int = DEFAULT_LIMIT
    window_s: float = DEFAULT_WINDOW_S
    capacity: int = DEFAULT_CAPACITY
    _failures: OrderedDict[tuple[str, str], deque[float]] = field(
        default_factory=OrderedDict, init=False, repr=False
    )

    def __len__(self) -> int:
        """How many (username, client) pairs are remembered."""
        return len(self._failures)

    def retry_after(self, username: str, client: str, now: float) -> float | None:
        """Seconds until this client may try this username again, or ``None`` if it may now."""
        key = _key(username, client)
        failures = self._failures.get(key)
        if failures is None:
            return None
        self._forget_older_than(failures, now)
        if not failures:
            del self._failures[key]
            return None
        if len(failures) < self.limit:
            return None
        return max(failures[0] + self.window_s - now, 0.0)

    def failed(self, username: str, client: str, now: float) -> None:
        """Count one wrong password (or unknown username)."""
        key = _key(username, client)
        failures = self._failures.pop(key, None) or deque()
        self._forget_older_than(failures, now)
        failures.append(now)
        while len(failures) > self.limit:
            failures.popleft()
        self._failures[key] = failures
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)

    def succeeded(self, username: str, client: str) -> None:
        """A right password clears the count of that pair."""
        self._failures.pop(_key(username, client), None)

    def _forget_older_than(self, failures: deque[float], now: float) -> None:
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()


def _key(username: str, client: str) -> tuple[str, str]:
    return (username.strip().casefold(), client)
