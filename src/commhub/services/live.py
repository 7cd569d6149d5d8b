"""The live feed: events for the people watching, pushed the moment they happen.

In-process fan-out: each WebSocket subscriber has a bounded queue; a client
too slow to keep up loses its oldest events (and is told how many), never
the hub's time. Event names are the constants below; ``docs/live.md``
documents their payloads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

log = logging.getLogger(__name__)

HELLO: Final = "hello"
CALL_OFFERED: Final = "call.offered"
"""Screen pop: the subscriber's phone is ringing with this caller."""
CALL_UPDATED: Final = "call.updated"
"""A call the subscriber handled (or, for a call watcher, any call) changed state."""
EVENTS_DROPPED: Final = "events.dropped"

SUBSCRIBER_QUEUE: Final = 256

Message = Mapping[str, Any]


@dataclass(eq=False)
class Subscription:
    """One connected client: whose events it gets, and its queue."""

    user_id: int
    watch_all_calls: bool
    queue: asyncio.Queue[Message] = field(
        default_factory=lambda: asyncio.Queue(maxsize=SUBSCRIBER_QUEUE)
    )
    dropped: int = 0

    def offer(self, message: Message) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(message)


class LiveFeed:
    """Publish to users by id, or to everyone who watches all calls."""

    def __init__(self) -> None:
        self._by_user: dict[int, set[Subscription]] = {}
        self._watchers: set[Subscription] = set()

    def subscribe(self, user_id: int, *, watch_all_calls: bool = False) -> Subscription:
        subscription = Subscription(user_id=user_id, watch_all_calls=watch_all_calls)
        self._by_user.setdefault(user_id, set()).add(subscription)
        if watch_all_calls:
            self._watchers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._by_user.get(subscription.user_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._by_user[subscription.user_id]
        self._watchers.discard(subscription)

    def listening(self, user_id: int) -> bool:
        """Whether ``user_id`` has a client connected (a screen pop is built only then)."""
        return user_id in self._by_user

    @property
    def anyone(self) -> bool:
        return bool(self._by_user)

    def publish(
        self, event: str, data: Message, *, users: Iterable[int] = (), call_watchers: bool = False
    ) -> int:
        """Send to the users named (each of their clients) and optionally every call watcher."""
        message = {"type": event, "data": data}
        targets: set[Subscription] = set()
        for user_id in users:
            targets.update(self._by_user.get(user_id, ()))
        if call_watchers:
            targets.update(self._watchers)
        for subscription in targets:
            subscription.offer(message)
        return len(targets)
