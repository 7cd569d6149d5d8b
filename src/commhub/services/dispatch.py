"""The one outbound path: a dispatcher per sending channel takes its queued outbox rows and
hands them over, at its pace, recording each answer on the same row and the card.

::

    a service writes the outbox row (queued) ─► the channel's dispatcher claims it
      (``store/outbox.py``: sending, its holder name, a lease it renews)
      ─► the adapter's ``send()`` ─► sent / retried later / failed / uncertain

The rate is kept on an absolute schedule (the n-th message of a backlog starts
at ``t0 + n / rate``), so a slow answer does not slow the rate and a fast one
does not let a burst through; up to ``window`` sends are in flight at once, as
the channel allows (SMPP's window, Twilio's concurrency, one SMTP connection).
A row is claimed just before its turn, so no other dispatcher can take it and
a crash cannot send it a second time. Answers are written in batches a few tens
of milliseconds apart. A claim whose holder died (its lease ran out) makes the
row *uncertain*: a channel that keeps a list of what it took (``SentLookup``)
is asked, and the row is settled as sent or queued again by its answer;
otherwise it stays "may have been sent" for a report or a person. What differs
by channel (which rows, what to send, what to write) is its :class:`Delivery`;
campaigns and call lists only add rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import (
    ChannelError,
    ChannelUnavailable,
    HandOverUnknown,
    SendRejected,
    SendThrottled,
)
from commhub.models import Contact, utcnow
from commhub.services import live
from commhub.services.database import Database
from commhub.services.outbox import hold_in_doubt, mark_lapsed
from commhub.store import outbox as claims

log = logging.getLogger(__name__)

CATCH_UP_S: Final = 0.1
"""A stall this short (a database write) is made up by the schedule; a longer gap is idleness."""
RECORD_EVERY_S: Final = 0.05
"""Answers are written together at most this long after they came."""
RETRY_WRITE_MIN_S: Final = 0.5
POLL_S: Final = 1.0
"""How often a dispatcher looks for rows queued by another process."""
BATCH: Final = 200
LOOKUP_SLACK_S: Final = 5.0
"""A gateway's clock may run this far behind ours when a message is looked up."""


CLAIM_AHEAD_S: Final = 0.05
MAX_CLAIM: Final = 32


def claim_group(window: int, rate: float | None) -> int:
    """How many rows one claim takes: a window, or up to ``CLAIM_AHEAD_S`` of sending.

    Claiming one window at a time cost a transaction per four e-mails, which
    held a mailbox of four connections to a fifth of what they carry; a claim
    of 32 lets them run at their speed. A paced channel takes no more than it
    sends in ``CLAIM_AHEAD_S`` (at 200 SMS/s, its window of 10): what a crash
    leaves in doubt stays a few, looked up where the channel can say.
    """
    ahead = MAX_CLAIM if rate is None else int(rate * CLAIM_AHEAD_S)
    return max(window, min(MAX_CLAIM, ahead))


class Pacer:
    """Start times ``1/rate`` apart on an absolute schedule; an idle gap does not bank a burst.

    Falling behind by up to ``CATCH_UP_S`` is caught up (at most that many
    seconds' worth of messages go back to back); more counts as idle. No rate:
    no waiting.
    """

    def __init__(self, rate: float | None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.interval = 0.0 if rate is None else 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self._next < now - max(self.interval, CATCH_UP_S):
            self._next = now  # idle: start afresh, no catching up
        delay = self._next - now
        self._next += self.interval
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a row that met a temporary failure is tried, and how far apart."""

    max_attempts: int
    first_delay_s: float = 2.0
    max_delay_s: float = 300.0

    def delay(self, attempts: int) -> float:
        return float(min(self.first_delay_s * 2 ** (attempts - 1), self.max_delay_s))


@dataclass(frozen=True, slots=True)
class Due:
    """A queued row, read ahead of its turn, with the message its channel sends."""

    outbox_id: int
    interaction_id: int
    message: Any
    """What the adapter's ``send()`` takes; ``None`` if the row's content is gone."""


@dataclass(frozen=True, slots=True)
class Claimed:
    outbox_id: int
    interaction_id: int
    message: Any
    attempts: int
    holder: str
    """Who claimed it: only that holder's answer settles the row."""


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A card entry whose status a send moved: told to the contact's owner."""

    interaction_id: int
    contact_id: int
    owner_id: int
    status: str


class Delivery(Protocol):
    """What one channel kind adds to dispatching: its rows, its send, what it writes."""

    channel: str
    """The outbox rows' ``channel`` (``"email"``, ``"sms"``)."""
    retry: RetryPolicy
    status_event: str | None
    """The live-feed event that tells an owner their contact's message moved, if any."""

    async def due(self, session: AsyncSession, source: str, after: int, limit: int) -> list[Due]:
        """Queued rows of ``source`` due now, after outbox id ``after``, in queue order."""
        ...

    async def send(self, channel: Any, message: Any) -> Any:
        """Hand ``message`` to the adapter; its acceptance (raises the port's errors)."""
        ...

    async def record_sent(
        self, session: AsyncSession, source: str, batch: Sequence[tuple[Claimed, Any]]
    ) -> list[StatusChange]:
        """Write a batch of acceptances (only rows still held by their claimer); commits."""
        ...

    async def record_failed(
        self, session: AsyncSession, item: Claimed, reason: str
    ) -> tuple[int, int | None] | None:
        """Fail the row and its card entry with ``reason`` if still held; commits.

        ``(interaction_id, contact_id)`` when it was failed here, ``None`` if settled meanwhile.
        """
        ...

    async def uncertain(self, session: AsyncSession, source: str) -> list[tuple[Claimed, datetime]]:
        """Rows in doubt, with when each was claimed (where a lookup may start)."""
        ...

    async def queue_again(self, session: AsyncSession, item: Claimed) -> None:
        """The channel surely has no such message: back in the queue, saying why; commits."""
        ...

    def lookup(self, channel: Any) -> Any | None:
        """The channel as a :class:`~commhub.channels.SentLookup`, if it can be asked."""
        ...


class Dispatcher:
    """Sends one channel's queued rows, at its rate, recording each answer."""

    def __init__(
        self,
        channel: Any,
        delivery: Delivery,
        *,
        db: Database,
        feed: live.LiveFeed,
        rate: float | None,
        window: int,
        poll_s: float = POLL_S,
        lease_s: float = claims.LEASE_S,
    ) -> None:
        self._channel = channel
        self._delivery = delivery
        self._db = db
        self._feed = feed
        self._pacer = Pacer(rate)
        self._window = window
        self._group = claim_group(window, rate)
        self._slots = asyncio.Semaphore(window)
        self._accepted: list[tuple[Claimed, Any]] = []
        self._answered = asyncio.Event()
        self._recorder: asyncio.Task[None] | None = None
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._holder = claims.holder_name(f"{delivery.channel}:{channel.name}")
        self._held: set[int] = set()
        """Outbox ids claimed here whose outcome is not written yet: their leases are renewed."""
        self._keeper: asyncio.Task[None] | None = None
        self._writes = asyncio.Lock()
        """Renewing leases and recording answers touch the same rows: one at a time, or
        PostgreSQL may find the two transactions waiting on each other (a deadlock)."""
        self._lease_s = lease_s
        self.sent = 0
        self.failed = 0
        self.retried = 0
        self.last_error: str | None = None

    @property
    def name(self) -> str:
        return str(self._channel.name)

    @property
    def kind(self) -> str:
        """The outbox channel it sends (``"sms"``, ``"email"``)."""
        return self._delivery.channel

    @property
    def rate(self) -> float | None:
        return 1.0 / self._pacer.interval if self._pacer.interval else None

    def wake(self) -> None:
        """A row was queued for this channel: look now, not at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        label = f"{self._delivery.channel} {self.name}"
        self._task = asyncio.create_task(self._loop(), name=f"dispatch {label}")
        self._recorder = asyncio.create_task(self._record_loop(), name=f"dispatch records {label}")
        self._keeper = asyncio.create_task(self._keep_loop(), name=f"dispatch leases {label}")

    async def stop(self, *, flush_timeout: float = 10.0) -> None:
        """Stop taking rows; let those in flight finish (up to ``flush_timeout`` s)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sending:
            await asyncio.wait(self._sending, timeout=flush_timeout)
        for task in self._sending:
            task.cancel()
        for name in ("_recorder", "_keeper"):
            task = getattr(self, name)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                setattr(self, name, None)
        await self._flush_accepted()

    async def _loop(self) -> None:
        after = 0
        ahead: asyncio.Task[list[Due]] | None = None
        unstarted: list[Claimed] = []
        try:
            while True:
                batch = await (ahead or asyncio.create_task(self._read_due(after)))
                ahead = None
                if len(batch) == BATCH:  # read the next page while this one goes out
                    after = batch[-1].outbox_id
                    ahead = asyncio.create_task(self._read_due(after))
                for start in range(0, len(batch), self._group):
                    unstarted = await self._claim(batch[start : start + self._group])
                    while unstarted:
                        await self._slots.acquire()
                        await self._pacer.wait()
                        item = unstarted.pop(0)
                        task = asyncio.create_task(self._send(item), name=f"send {item.outbox_id}")
                        self._sending.add(task)
                        task.add_done_callback(self._sending.discard)
                if ahead is None:
                    after = 0  # from the start again: retries fall due behind the cursor
                    if batch:
                        # Rows were there: more may have come while these went out (a
                        # campaign's fill job, another process's messages). Only an empty
                        # look waits for a wake or the next poll.
                        continue
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_s)
        finally:
            if ahead is not None:
                ahead.cancel()
            if unstarted:  # a stop, not a crash: what was claimed but never handed over
                await self._give_back(unstarted)

    async def _give_back(self, items: list[Claimed]) -> None:
        """Queue again, as they were, rows claimed here that never went out (the hub stops)."""
        ids = [item.outbox_id for item in items]
        try:
            async with self._writes, self._db() as session:
                await claims.give_back(session, holder=self._holder, ids=ids)
        except (OSError, TimeoutError, SQLAlchemyError) as exc:
            # They lapse into doubt, as after a crash: a lookup or a person settles them.
            log.error("%s: cannot give back %d unsent claims: %s", self.name, len(ids), exc)
            return
        self._held.difference_update(ids)

    async def _read_due(self, after: int) -> list[Due]:
        """The next due rows after outbox id ``after``; reading claims nothing."""
        try:
            async with self._db() as session:
                return await self._delivery.due(session, self.name, after, BATCH)
        except (OSError, TimeoutError) as exc:
            self.last_error = f"database: {exc}"
            log.error("%s: cannot read the outbox: %s", self.name, exc)
            return []

    async def _claim(self, dues: list[Due]) -> list[Claimed]:
        """Claim the next few in one statement, just before their turn.

        A claim takes ``claim_group`` rows, so a crash leaves at most that many
        (and those in flight) in doubt, never a whole page read ahead.
        """
        try:
            async with self._db() as session:
                taken = await claims.claim(
                    session,
                    holder=self._holder,
                    ids=[d.outbox_id for d in dues],
                    lease_s=self._lease_s,
                )
        except (OSError, TimeoutError) as exc:
            self.last_error = f"database: {exc}"
            log.error("%s: cannot claim messages: %s", self.name, exc)
            return []
        self._held.update(taken)
        return [
            Claimed(
                d.outbox_id, d.interaction_id, d.message, taken[d.outbox_id].attempts, self._holder
            )
            for d in dues
            if d.outbox_id in taken  # else no longer queued (taken care of meanwhile)
        ]

    async def _keep_loop(self) -> None:
        """Renew this dispatcher's leases; turn others' lapsed claims uncertain and settle them."""
        while True:
            try:
                async with self._writes, self._db() as session:
                    await claims.renew(
                        session, holder=self._holder, ids=sorted(self._held), lease_s=self._lease_s
                    )
                await mark_lapsed(self._db, channel=self._delivery.channel, sources=[self.name])
                await self._look_up_uncertain()
            except (OSError, TimeoutError, SQLAlchemyError) as exc:
                # Never ends the loop: a dispatcher that stops renewing makes its own rows
                # lapse into doubt while it is still sending them.
                self.last_error = f"database: {exc}"
                log.error("%s: cannot renew or check claims: %s", self.name, exc)
            await asyncio.sleep(self._lease_s / 3)

    async def _look_up_uncertain(self) -> None:
        """Ask a channel that keeps a list whether it took each message in doubt."""
        lookup = self._delivery.lookup(self._channel)
        if lookup is None:
            return
        async with self._db() as session:
            doubts = await self._delivery.uncertain(session, self.name)
        # A request the dead holder sent may still be working its way into the
        # gateway: its "none" counts only once that cannot be so any longer.
        settled_before = utcnow() - timedelta(seconds=2 * self._lease_s + LOOKUP_SLACK_S)
        settling = {item.outbox_id for item, _ in self._accepted}
        for item, since in doubts:
            if since > settled_before or item.outbox_id in settling:
                continue
            try:
                found = await lookup.find_sent(
                    item.message, since=since - timedelta(seconds=LOOKUP_SLACK_S)
                )
            except ChannelUnavailable as exc:
                log.warning("%s: cannot look up messages in doubt now: %s", self.name, exc)
                return
            if found is not None:
                log.info("%s: %s was taken before the stop: sent", self.name, item.outbox_id)
                self._accepted.append((item, found))
                self._answered.set()
            else:
                async with self._db() as session:
                    await self._delivery.queue_again(session, item)
                log.warning(
                    "%s: outbox %d: not found at the gateway, sent again", self.name, item.outbox_id
                )

    async def _send(self, item: Claimed) -> None:
        try:
            if item.message is None:
                await self._fail(item, "the stored message is missing")
                return
            try:
                accepted = await self._delivery.send(self._channel, item.message)
            except SendRejected as exc:
                await self._fail(item, str(exc))
            except HandOverUnknown as exc:
                # Never retried blindly: the channel may have it (asked later where it can say).
                self.last_error = str(exc)
                await hold_in_doubt(
                    self._db, holder=item.holder, outbox_id=item.outbox_id, reason=str(exc)
                )
                self._held.discard(item.outbox_id)
            except (ChannelUnavailable, ChannelError) as exc:
                await self._retry(item, exc)
            else:
                self._accepted.append((item, accepted))
                self._answered.set()
        except (OSError, TimeoutError, SQLAlchemyError) as exc:
            # The outcome could not be written: the claim is let go, so it lapses into
            # doubt for a lookup or a person rather than staying "sending" for good.
            self.last_error = f"database: {exc}"
            log.error(
                "%s: outbox %d: its outcome was not written: %s", self.name, item.outbox_id, exc
            )
            self._held.discard(item.outbox_id)
        finally:
            self._slots.release()

    async def _record_loop(self) -> None:
        """Write the channel's acceptances in batches: one transaction per ``RECORD_EVERY_S``.

        One transaction per answer capped a hub at ~100-170 msg/s of CPU on
        SQLite, below the rates gateways are contracted for.
        """
        while True:
            await self._answered.wait()
            await asyncio.sleep(RECORD_EVERY_S)
            await self._flush_accepted()

    async def _flush_accepted(self) -> None:
        self._answered.clear()
        batch, self._accepted = self._accepted, []
        if not batch:
            return
        batch.sort(key=lambda answered: answered[0].outbox_id)  # rows locked in one order
        delay = RETRY_WRITE_MIN_S
        while True:
            try:
                async with self._writes, self._db() as session:
                    changed = await self._delivery.record_sent(session, self.name, batch)
                break
            except asyncio.CancelledError:
                # Stopped mid-write: the answers go back for stop()'s last flush (writing one
                # twice changes nothing), or the rows would lapse into doubt though sent.
                self._accepted = batch + self._accepted
                raise
            except (OSError, TimeoutError, SQLAlchemyError) as exc:  # keep them, retry
                self.last_error = f"database: {exc}"
                log.error("%s: recording %d sends failed, retrying: %s", self.name, len(batch), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._delivery.retry.max_delay_s)
        self.sent += len(batch)
        self._held.difference_update(item.outbox_id for item, _ in batch)
        event = self._delivery.status_event
        if event is not None and self._feed.anyone:
            for change in changed:
                data = {"interaction_id": change.interaction_id, "contact_id": change.contact_id}
                self._feed.publish(
                    event, {**data, "status": change.status}, users=[change.owner_id]
                )

    async def _retry(self, item: Claimed, exc: ChannelError) -> None:
        reason = str(exc) or type(exc).__name__
        self.last_error = reason
        policy = self._delivery.retry
        if item.attempts >= policy.max_attempts:
            await self._fail(item, f"gave up after {item.attempts} tries: {reason}")
            return
        delay = policy.delay(item.attempts)
        if isinstance(exc, SendThrottled) and exc.retry_after:
            delay = max(delay, exc.retry_after)
        self.retried += 1
        log.warning(
            "%s: outbox %d not sent (%s), retrying in %.0fs",
            self.name,
            item.outbox_id,
            reason,
            delay,
        )
        async with self._db() as session:
            await claims.release(
                session,
                holder=item.holder,
                outbox_id=item.outbox_id,
                reason=reason,
                retry_at=utcnow() + timedelta(seconds=delay),
            )
            await session.commit()
        self._held.discard(item.outbox_id)

    async def _fail(self, item: Claimed, reason: str) -> None:
        """A message that will not go: failed, with the reason, on its card."""
        async with self._db() as session:
            failed = await self._delivery.record_failed(session, item, reason)
        self._held.discard(item.outbox_id)
        if failed is None:
            return  # settled meanwhile by someone who knew
        self.failed += 1
        log.warning("%s: outbox %d failed: %s", self.name, item.outbox_id, reason)
        interaction_id, contact_id = failed
        event = self._delivery.status_event
        if event is None or contact_id is None or not self._feed.anyone:
            return
        async with self._db() as session:
            owner = await session.scalar(select(Contact.owner_id).where(Contact.id == contact_id))
        if owner is not None:
            data = {"interaction_id": interaction_id, "contact_id": contact_id}
            self._feed.publish(event, {**data, "status": "failed"}, users=[owner])
