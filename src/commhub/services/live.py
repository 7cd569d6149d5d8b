"""The live feed: events for the people watching, pushed the moment they happen.

In-process fan-out: each WebSocket subscriber has a bounded queue; a client
too slow to keep up loses its oldest events (and is told how many), never
the hub's time. Event names are the constants below; ``docs/live.md``
documents their payloads.

:class:`TelephonyWatch` tells every subscriber when the PBX links go down or
come back, so that every page can say "telephony disconnected".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from commhub.channels import Channel, Telephony

log = logging.getLogger(__name__)

HELLO: Final = "hello"
CALL_OFFERED: Final = "call.offered"
"""Screen pop: the subscriber's phone is ringing with this caller."""
CALL_UPDATED: Final = "call.updated"
"""A call the subscriber handled (or, for a call watcher, any call) changed state."""
EMAIL_RECEIVED: Final = "email.received"
"""A new message on a card the subscriber owns."""
SMS_RECEIVED: Final = "sms.received"
"""An SMS on a card the subscriber owns (and to call watchers)."""
SMS_STATUS: Final = "sms.status"
"""A message the subscriber's contact was sent moved on: sent, delivered, failed."""
DEAL_MOVED: Final = "deal.moved"
"""A deal was opened or changed stage: to its owner."""
EVENTS_DROPPED: Final = "events.dropped"
TELEPHONY_STATUS: Final = "telephony.status"
"""The PBX links went down or came back (to everyone connected)."""
TELEPHONY_POLL_S: Final = 1.0

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

    def broadcast(self, event: str, data: Message) -> int:
        """Send to every connected client, whoever they are."""
        message = {"type": event, "data": data}
        count = 0
        for subscriptions in self._by_user.values():
            for subscription in subscriptions:
                subscription.offer(message)
                count += 1
        return count


@dataclass(frozen=True, slots=True)
class TelephonyStatus:
    """The PBX links as the feed reports them: connected while any one of them is."""

    links: tuple[tuple[str, bool], ...]
    """(channel name, connected) for each telephony channel, in configuration order."""

    @property
    def connected(self) -> bool:
        return any(up for _, up in self.links)

    def as_data(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "links": [{"name": name, "connected": up} for name, up in self.links],
        }


def telephony_status(channels: Iterable[Channel]) -> TelephonyStatus | None:
    """What the PBX links say now; ``None`` when the hub has no PBX at all."""
    links = []
    for channel in channels:
        if not isinstance(channel, Telephony):
            continue
        try:
            up = channel.health().connected
        except Exception:
            log.exception("health of %s could not be read; taken as disconnected", channel.name)
            up = False
        links.append((channel.name, up))
    return TelephonyStatus(tuple(links)) if links else None


class TelephonyWatch:
    """Reads the PBX links' health every second and tells everyone when it changes.

    Lives in the process that owns the links (the one serving the feed). The
    current status is :attr:`status`, for what a new client is told on connect.
    """

    def __init__(
        self,
        feed: LiveFeed,
        channels: Iterable[Channel],
        *,
        interval_s: float = TELEPHONY_POLL_S,
    ) -> None:
        self._feed = feed
        self._channels = tuple(channels)
        self._interval_s = interval_s
        self._status = telephony_status(self._channels)
        self._task: asyncio.Task[None] | None = None

    @property
    def status(self) -> TelephonyStatus | None:
        return self._status

    async def start(self) -> None:
        if self._status is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="telephony-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def check(self) -> bool:
        """Read the links now; publish and return ``True`` if their status changed."""
        now = telephony_status(self._channels)
        if now == self._status:
            return False
        self._status = now
        if now is not None:
            if not now.connected:
                log.warning("telephony disconnected: no PBX link is up")
            self._feed.broadcast(TELEPHONY_STATUS, now.as_data())
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            self.check()
