"""What every adapter needs and used to write for itself: its settings checked with one
kind of error, the SMS gateway port's identity, and a reconnect backoff.

Beside :mod:`commhub.channels` (the ports) because adapters use it to implement them;
only what the adapters' copies really shared is here, each piece one idea.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from commhub.channels import ChannelConfigError
from commhub.config import base_url

M = TypeVar("M", bound=BaseModel)


def read_options(model: type[M], options: Mapping[str, Any], label: str) -> M:
    """``options`` as ``model``; an error names the channel (``label``) and the setting at
    fault, never a value (it may be a secret)."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        raise ChannelConfigError(f"{label}: {where}: {first['msg']}") from None


def callback_base(label: str, own: str | None, hub: str | None, *, why: str) -> str:
    """The base URL a gateway calls the hub back on: its own ``public_url``, else the hub's.

    One of them is required (``why`` says what the gateway sends there).
    """
    if own is not None:
        return own
    if not hub:
        raise ChannelConfigError(
            f"{label}: public_url: required (or set the hub's public URL): {why}"
        )
    try:
        return base_url(hub)
    except ValueError as exc:
        raise ChannelConfigError(f"{label}: the hub's public URL: {exc}") from None


class GatewayOptions(Protocol):
    """The settings every SMS gateway has, whatever its protocol."""

    @property
    def numbers(self) -> tuple[str, ...]: ...

    @property
    def purposes(self) -> frozenset[str]: ...

    @property
    def rate(self) -> float: ...


class GatewayIdentity:
    """The :class:`~commhub.channels.SmsGateway` port's identity, read from its settings.

    A gateway sets ``_name`` and ``_options`` in its ``__init__``.
    """

    _name: str
    _options: GatewayOptions

    @property
    def name(self) -> str:
        return self._name

    @property
    def numbers(self) -> tuple[str, ...]:
        return self._options.numbers

    @property
    def purposes(self) -> frozenset[str]:
        return self._options.purposes

    @property
    def rate(self) -> float:
        return self._options.rate


class Backoff:
    """Pauses between reconnects: doubling from ``min_s`` up to ``max_s``, with jitter so
    that many hubs (or links) do not knock on the peer in step, and back to ``min_s``
    once a connection has held ``stable_after_s``."""

    def __init__(self, min_s: float, max_s: float, *, stable_after_s: float = 30.0) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self.stable_after_s = stable_after_s
        self._delay = min_s
        self._started = time.monotonic()

    def attempt(self) -> None:
        """Note that a connection attempt starts now."""
        self._started = time.monotonic()

    def succeeded(self) -> None:
        """The connection worked: the next failure starts from ``min_s`` again."""
        self._delay = self.min_s

    def pause(self) -> float:
        """How long to wait before the next attempt, from ±20 % of the current delay."""
        if time.monotonic() - self._started > self.stable_after_s:
            self._delay = self.min_s
        pause = self._delay * (0.8 + 0.4 * random.random())
        self._delay = min(self._delay * 2, self.max_s)
        return pause


def describe(exc: BaseException) -> str:
    """An error as a person reads it on the channels page: its type, and its text if any."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
