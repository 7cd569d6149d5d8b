"""The one inbound path: every adapter's events are filed here, by one writer.

::

    adapter ─► sink(event) ─► pending, in arrival order (a call's newer snapshot
               replaces its older one where it stands)
            ─► the writer takes a batch; each channel's step files its part of it
               in one transaction: identify, record the interaction once per
               (channel, external id), the channel's detail rows ─► commit
            ─► the step settles each event with its adapter and publishes it

One writer for every channel, so a database outage is waited out in one place
(the batch goes back whole and the writer backs off), and an event the store
refuses is found by filing the batch one event at a time: that one is refused
through its step (a call snapshot logged and dropped, an e-mail kept raw with
the reason, an SMS left to its gateway to deliver again) and the rest are filed.
What is specific to a channel (merging call snapshots, threading mail, SMS
reports) is its :class:`Step`; the road is the same.

Screen pops do not wait behind the writer: offers go to the pop workers, and
the writer holds back a moment while a pop is being built.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Protocol

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import InboundEvent
from commhub.services.database import Database

log = logging.getLogger(__name__)

BATCH: Final = 200
MAX_PENDING: Final = 100_000
RETRY_MIN_S: Final = 0.5
RETRY_MAX_S: Final = 30.0
POP_FIRST_S: Final = 0.05
"""How long the writer waits for screen pops in progress before it writes."""
TRANSIENT: Final = (OperationalError, InterfaceError, OSError, TimeoutError)
"""The database is down or the connection broke: file the batch again later, whole."""


class Outcome(StrEnum):
    """What filing one event did."""

    NEW = "new"
    DUPLICATE = "duplicate"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    UNMATCHED = "unmatched"
    """A report on an id we do not know (yet: it may beat the send's own answer)."""
    KEPT = "kept"
    """Unreadable or refused by the store: kept raw with the reason for a person."""
    REFUSED = "refused"
    """Not filed; its adapter is told so (and its gateway delivers it again)."""


@dataclass(frozen=True, slots=True)
class Filed:
    """One event's result, for its step to settle and publish after the commit."""

    outcome: Outcome
    interaction_id: int | None = None
    contact_id: int | None = None
    owner_id: int | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None


class Step(Protocol):
    """A channel's part in filing: the writer calls it, it never calls the writer's store."""

    name: str
    waits: bool
    """True when the adapter waits on each event's ``settled`` before handing more (mail,
    SMS): it cannot flood the writer, so its events are never dropped for a full backlog
    (a dropped mail would end its watcher). Call events are not waited on, so they are
    bounded by :data:`MAX_PENDING`."""
    last_error: str | None
    """The step's own last refusal; an outage is the writer's :attr:`Filing.last_error`."""

    def key(self, event: Any) -> Hashable:
        """Events with one key are one item: a later one replaces the earlier in place."""
        ...

    def wanted(self, event: Any) -> bool:
        """False once the adapter gave up on the event (its connection dropped)."""
        ...

    async def file(self, session: AsyncSession, events: Sequence[Any]) -> list[Any]:
        """File ``events`` in ``session``, in order, one result each; the writer commits."""
        ...

    async def refuse(self, db: Database, event: Any, error: Exception) -> Any:
        """``event`` failed alone: keep it for a person, or tell its adapter (a result)."""
        ...

    def done(self, event: Any, result: Any) -> None:
        """After the commit: settle with the adapter, count, publish."""
        ...

    def drop(self, event: Any, why: str) -> None:
        """Not filed (the hub stops, the backlog is full): the adapter offers it again."""
        ...

    async def stop(self) -> None:
        """Stop the step's own timers (reports parked for a retry)."""
        ...


@dataclass(slots=True, eq=False)
class _Item:
    step: Step
    event: Any
    key: Hashable


class Filing:
    """Takes every adapter's events (:meth:`sink`) and files them through their steps."""

    def __init__(
        self,
        db: Database,
        routes: Mapping[type, Step | Callable[[Any], None]],
        *,
        pops_busy: Callable[[], asyncio.Event | None] | None = None,
    ) -> None:
        self._db = db
        self._routes = dict(routes)
        self._pops_busy = pops_busy
        self._pending: dict[Hashable, _Item] = {}
        self._count: Counter[str] = Counter()
        self._in_hand: list[_Item] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._delay = RETRY_MIN_S
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        """The database's error while it is unreachable."""

    @property
    def steps(self) -> list[Step]:
        found: dict[int, Step] = {}
        for route in self._routes.values():
            if not callable(route):
                found[id(route)] = route
        return list(found.values())

    def sink(self, event: InboundEvent) -> None:
        """The :data:`~commhub.channels.EventSink` handed to every adapter; returns at once."""
        route = self._routes.get(type(event))
        if route is None:
            log.error("no filing step for %r", event)
            return
        if callable(route):
            route(event)
            return
        self._add(route, event)

    def _add(self, step: Step, event: Any) -> None:
        key = (step.name, step.key(event))
        pending = self._pending
        if key in pending:
            pending[key] = _Item(step, event, key)
        else:
            if not step.waits and len(pending) >= MAX_PENDING:
                step.drop(event, "the filing backlog is full")
                return
            pending[key] = _Item(step, event, key)
            self._count[step.name] += 1
        self._idle.clear()
        self._wake.set()

    def backlog(self, step: str | None = None) -> int:
        """Events waiting to be filed (of one step, by name)."""
        return len(self._pending) if step is None else self._count[step]

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._write_loop(), name="filing writer")

    async def stop(self, *, flush_timeout: float = 10.0) -> None:
        """File what is pending (for up to ``flush_timeout`` s); the adapters re-offer the rest."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drained(), flush_timeout)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        left = [*self._in_hand, *self._pending.values()]
        self._in_hand = []
        self._pending.clear()
        self._count.clear()
        for item in left:
            item.step.drop(item.event, "the hub is stopping")
        if left:
            log.error("stopped with %d inbound events not filed", len(left))
        for step in self.steps:
            await step.stop()

    async def drained(self) -> None:
        """Wait until every event handed in so far is filed."""
        await self._idle.wait()

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                busy = self._pops_busy() if self._pops_busy is not None else None
                if busy is not None:
                    # A phone is ringing: its pop goes first, the log a moment later.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(busy.wait(), POP_FIRST_S)
                await self._write_batch()
            self._idle.set()

    def _take(self) -> list[_Item]:
        keys = list(itertools.islice(self._pending, BATCH))
        batch = [self._pending.pop(key) for key in keys]
        for item in batch:
            self._count[item.step.name] -= 1
        return [item for item in batch if item.step.wanted(item.event)]

    def _put_back(self, items: Sequence[_Item]) -> None:
        """Back at the front, in order; a newer event of the same key that came meanwhile wins."""
        front: dict[Hashable, _Item] = {}
        for item in items:
            newer = self._pending.pop(item.key, None)
            if newer is None:
                self._count[item.step.name] += 1
            front[item.key] = newer or item
        front.update(self._pending)
        self._pending = front

    async def _write_batch(self) -> None:
        batch = self._take()
        self._in_hand = list(batch)
        groups: dict[str, list[_Item]] = {}
        for item in batch:
            groups.setdefault(item.step.name, []).append(item)
        unfiled: list[_Item] = []
        cause: BaseException | None = None
        for items in groups.values():
            if cause is None:
                filed, cause = await self._file_group(items)
                unfiled += items[filed:]
            else:
                unfiled += items
        self._in_hand = []
        if cause is not None:
            self._put_back(unfiled)
            await self._back_off(cause, f"filing {len(unfiled)} inbound events")
            return
        self._recovered()

    async def _file_group(self, items: list[_Item]) -> tuple[int, BaseException | None]:
        """File one step's items: how many were filed, and why not the rest (an outage)."""
        step = items[0].step
        events = [item.event for item in items]
        try:
            try:
                results = await self._file(step, events)
            except TRANSIENT:
                raise
            except Exception as exc:  # one bad event must not stop its channel
                return await self._file_each(step, items, exc)
        except TRANSIENT as exc:
            return 0, exc
        for item, result in zip(items, results, strict=True):
            self._done(item, result)
        return len(items), None

    async def _file(self, step: Step, events: Sequence[Any]) -> list[Any]:
        async with self._db() as session:
            results = await step.file(session, events)
            await session.commit()
        return results

    async def _file_each(
        self, step: Step, items: Sequence[_Item], error: Exception
    ) -> tuple[int, BaseException | None]:
        """The store refused a batch: file its events one by one, refuse the bad one alone."""
        log.warning("filing %d %s events failed (%s); one by one", len(items), step.name, error)
        for index, item in enumerate(items):
            try:
                try:
                    result = (await self._file(step, [item.event]))[0]
                except TRANSIENT:
                    raise
                except Exception as exc:
                    log.exception("%s: the store refused %r", step.name, item.event)
                    result = await step.refuse(self._db, item.event, exc)
            except TRANSIENT as exc:
                return index, exc
            self._done(item, result)
        return len(items), None

    def _done(self, item: _Item, result: Any) -> None:
        with contextlib.suppress(ValueError):
            self._in_hand.remove(item)
        item.step.done(item.event, result)

    async def _back_off(self, exc: BaseException, what: str) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.error("%s failed, retrying in %.1fs: %s", what, self._delay, exc)
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, RETRY_MAX_S)

    def _recovered(self) -> None:
        if self._delay > RETRY_MIN_S:  # the database is back
            self._delay = RETRY_MIN_S
            self.last_error = None
