"""One sender per SMS gateway: takes its queued messages and hands them over at its rate.

The rate is kept on an absolute schedule (the n-th message of a backlog
starts at ``t0 + n / rate``), so a slow answer does not slow the rate and a
fast one does not let a burst through; up to ``window`` sends are in flight
at once, as gateways allow (SMPP's window, Twilio's concurrency).

A message is *claimed* (``store/outbox.py``: ``sending``, this sender's
name, a lease it renews) just before its turn, so no other sender can take
it and a crash cannot send it a second time. The gateway's acceptances are
written in batches a few tens of milliseconds apart. A claim whose holder
died (its lease ran out) makes the message *uncertain*: a gateway that keeps
a list of what it took (``SentLookup``) is asked, and the message is settled
as sent or queued again by its answer; otherwise it stays "may have been
sent" for its delivery report or a person. Throttling and temporary failures
are retried with backoff; a permanent refusal fails the message at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, cast

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import (
    ChannelUnavailable,
    DeliveryState,
    HandOverUnknown,
    OutboundSms,
    SendRejected,
    SendThrottled,
    SentLookup,
    SmsAccepted,
    SmsGateway,
)
from commhub.domain.interactions import Channel, Status
from commhub.models import Contact, Interaction, Outbox, SmsMessage, SmsPart, utcnow
from commhub.services import live
from commhub.services.outbox import hold_in_doubt, mark_lapsed
from commhub.store import outbox as claims
from commhub.store import sms as store
from commhub.store.dialect import upsert_insert
from commhub.store.engine import SessionFactory

log = logging.getLogger(__name__)

MAX_ATTEMPTS: Final = 8
BACKOFF_MIN_S: Final = 2.0
BACKOFF_MAX_S: Final = 300.0
CATCH_UP_S: Final = 0.1
"""A stall this short (a database write) is made up by the schedule; a longer gap is idleness."""
RECORD_EVERY_S: Final = 0.05
"""Acceptances are written together at most this long after they came."""
RETRY_WRITE_MIN_S: Final = 0.5
POLL_S: Final = 1.0
"""How often a sender looks for messages queued by another process."""
BATCH: Final = 200
LOOKUP_SLACK_S: Final = 5.0
"""A gateway's clock may run this far behind ours when a message is looked up."""
GONE: Final = "the gateway had no record of it after the hub stopped mid-send: sent again"


class Pacer:
    """Start times ``1/rate`` apart on an absolute schedule; an idle gap does not bank a burst.

    Falling behind by up to ``CATCH_UP_S`` is caught up (at most that many
    seconds' worth of messages go back to back); more counts as idle.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.interval = 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        if self._next < now - max(self.interval, CATCH_UP_S):
            self._next = now  # idle: start afresh, no catching up
        delay = self._next - now
        self._next += self.interval
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass(frozen=True, slots=True)
class Due:
    """A queued message, read ahead of its turn."""

    outbox_id: int
    interaction_id: int
    message: OutboundSms


@dataclass(frozen=True, slots=True)
class Claimed:
    outbox_id: int
    interaction_id: int
    message: OutboundSms
    attempts: int
    holder: str
    """Who claimed it: only that holder's answer settles the row."""


class SmsSender:
    """Sends one gateway's queued messages, at its rate, recording each answer."""

    def __init__(
        self,
        gateway: SmsGateway,
        *,
        sessions: SessionFactory,
        feed: live.LiveFeed,
        window: int = 10,
        poll_s: float = POLL_S,
        lease_s: float = claims.LEASE_S,
    ) -> None:
        self._gateway = gateway
        self._sessions = sessions
        self._feed = feed
        self._pacer = Pacer(gateway.rate)
        self._window = window
        self._slots = asyncio.Semaphore(window)
        self._accepted: list[tuple[Claimed, SmsAccepted]] = []
        self._answered = asyncio.Event()
        self._recorder: asyncio.Task[None] | None = None
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._holder = claims.holder_name(f"sms:{gateway.name}")
        self._held: set[int] = set()
        """Outbox ids claimed here whose outcome is not written yet: their leases are renewed."""
        self._keeper: asyncio.Task[None] | None = None
        self._lease_s = lease_s
        self.sent = 0
        self.failed = 0
        self.retried = 0
        self.last_error: str | None = None

    def wake(self) -> None:
        """A message was queued for this gateway: look now, not at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"sms sender {self.name}")
        self._recorder = asyncio.create_task(self._record_loop(), name=f"sms records {self.name}")
        self._keeper = asyncio.create_task(self._keep_loop(), name=f"sms leases {self.name}")

    async def stop(self, *, flush_timeout: float = 10.0) -> None:
        """Stop taking messages; let those in flight finish (up to ``flush_timeout`` s)."""
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

    @property
    def name(self) -> str:
        return self._gateway.name

    @property
    def rate(self) -> float:
        return 1.0 / self._pacer.interval

    async def _loop(self) -> None:
        after = 0
        ahead: asyncio.Task[list[Due]] | None = None
        try:
            while True:
                batch = await (ahead or asyncio.create_task(self._read_due(after)))
                ahead = None
                if len(batch) == BATCH:  # read the next page while this one goes out
                    after = batch[-1].outbox_id
                    ahead = asyncio.create_task(self._read_due(after))
                for start in range(0, len(batch), self._window):
                    for item in await self._mark(batch[start : start + self._window]):
                        await self._slots.acquire()
                        await self._pacer.wait()
                        task = asyncio.create_task(self._send(item), name=f"sms {item.message.key}")
                        self._sending.add(task)
                        task.add_done_callback(self._sending.discard)
                if ahead is None:
                    after = 0  # from the start again: retries fall due behind the cursor
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_s)
        finally:
            if ahead is not None:
                ahead.cancel()

    async def _read_due(self, after: int) -> list[Due]:
        """The next due messages after outbox id ``after``; reading claims nothing."""
        try:
            async with self._sessions() as session:
                return await _due(session, self._gateway.name, after, BATCH)
        except (OSError, TimeoutError) as exc:
            self.last_error = f"database: {exc}"
            log.error("%s: cannot read the outbox: %s", self.name, exc)
            return []

    async def _mark(self, dues: list[Due]) -> list[Claimed]:
        """Claim the next few in one statement, just before their turn.

        Only a window's worth is claimed ahead, so a crash leaves at most that
        many in doubt, never a whole page read ahead.
        """
        try:
            async with self._sessions() as session:
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
        """Renew this sender's leases; turn others' lapsed claims uncertain and settle them."""
        while True:
            try:
                async with self._sessions() as session:
                    await claims.renew(
                        session, holder=self._holder, ids=sorted(self._held), lease_s=self._lease_s
                    )
                await mark_lapsed(self._sessions, channel=Channel.SMS.value, sources=[self.name])
                await self._look_up_uncertain()
            except (OSError, TimeoutError) as exc:
                self.last_error = f"database: {exc}"
                log.error("%s: cannot renew or check claims: %s", self.name, exc)
            await asyncio.sleep(self._lease_s / 3)

    async def _look_up_uncertain(self) -> None:
        """Ask a gateway that keeps a list whether it took each message in doubt."""
        gateway = self._gateway
        if not isinstance(gateway, SentLookup):
            return
        async with self._sessions() as session:
            doubts = await _uncertain(session, self.name)
        # A request the dead holder sent may still be working its way into the
        # gateway: its "none" counts only once that cannot be so any longer.
        settled_before = utcnow() - timedelta(seconds=2 * self._lease_s + LOOKUP_SLACK_S)
        settling = {item.outbox_id for item, _ in self._accepted}
        for item, since in doubts:
            if since > settled_before or item.outbox_id in settling:
                continue
            try:
                found = await gateway.find_sent(
                    item.message, since=since - timedelta(seconds=LOOKUP_SLACK_S)
                )
            except ChannelUnavailable as exc:
                log.warning("%s: cannot look up messages in doubt now: %s", self.name, exc)
                return
            if found is not None:
                log.info("%s: %s was taken before the stop: sent", self.name, item.message.key)
                self._accepted.append((item, found))
                self._answered.set()
            else:
                async with self._sessions() as session:
                    await _queue_again(session, item)
                log.warning("%s: %s: %s", self.name, item.message.key, GONE)

    async def _send(self, item: Claimed) -> None:
        try:
            try:
                accepted = await self._gateway.send(item.message)
            except SendRejected as exc:
                await self._record(item, failed=str(exc))
            except HandOverUnknown as exc:
                # Never retried blindly: the gateway may have it (asked later where it can say).
                self.last_error = str(exc)
                await hold_in_doubt(
                    self._sessions, holder=item.holder, outbox_id=item.outbox_id, reason=str(exc)
                )
                self._held.discard(item.outbox_id)
            except ChannelUnavailable as exc:
                await self._retry(item, exc)
            else:
                self._accepted.append((item, accepted))
                self._answered.set()
        finally:
            self._slots.release()

    async def _record_loop(self) -> None:
        """Write the gateways' acceptances in batches: one transaction per ``RECORD_EVERY_S``.

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
        delay = RETRY_WRITE_MIN_S
        while True:
            try:
                async with self._sessions() as session:
                    changed = await _record_accepted(session, self._gateway.name, batch)
                break
            except (OSError, TimeoutError) as exc:  # the database is away: keep them, retry
                self.last_error = f"database: {exc}"
                log.error("%s: recording %d sends failed, retrying: %s", self.name, len(batch), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
        self.sent += len(batch)
        self._held.difference_update(item.outbox_id for item, _ in batch)
        if self._feed.anyone:
            for interaction_id, contact_id, owner, status in changed:
                data = {"interaction_id": interaction_id, "contact_id": contact_id}
                self._feed.publish(live.SMS_STATUS, {**data, "status": status}, users=[owner])

    async def _retry(self, item: Claimed, exc: ChannelUnavailable) -> None:
        reason = str(exc) or type(exc).__name__
        self.last_error = reason
        if item.attempts >= MAX_ATTEMPTS:
            await self._record(item, failed=f"gave up after {item.attempts} tries: {reason}")
            return
        delay = min(BACKOFF_MIN_S * 2 ** (item.attempts - 1), BACKOFF_MAX_S)
        if isinstance(exc, SendThrottled) and exc.retry_after:
            delay = max(delay, exc.retry_after)
        self.retried += 1
        log.warning(
            "%s: %s not sent (%s), retrying in %.0fs", self.name, item.message.key, reason, delay
        )
        async with self._sessions() as session:
            await claims.release(
                session,
                holder=item.holder,
                outbox_id=item.outbox_id,
                reason=reason,
                retry_at=utcnow() + timedelta(seconds=delay),
            )
            await session.commit()
        self._held.discard(item.outbox_id)

    async def _record(self, item: Claimed, *, failed: str) -> None:
        """A message that will not go: failed, with the reason, on its card."""
        async with self._sessions() as session:
            outbox = await session.get(Outbox, item.outbox_id)
            interaction = await session.get(Interaction, item.interaction_id)
            message = await store.message_of(session, item.interaction_id)
            if outbox is None or interaction is None or message is None:
                return  # deleted meanwhile (the contact was erased)
            if outbox.claimed_by != item.holder or outbox.state not in (
                claims.SENDING,
                claims.UNCERTAIN,
            ):
                return  # settled meanwhile by someone who knew
            outbox.state = "failed"
            outbox.last_error = failed
            message.reason = failed
            interaction.status = DeliveryState.FAILED.value
            interaction.extra = {**interaction.extra, "reason": failed}
            contact_id = interaction.contact_id
            await session.commit()
        self._held.discard(item.outbox_id)
        self.failed += 1
        log.warning("%s: %s failed: %s", self.name, item.message.key, failed)
        if contact_id is not None and self._feed.anyone:
            owner = await self._owner(contact_id)
            if owner is not None:
                data = {"interaction_id": item.interaction_id, "contact_id": contact_id}
                self._feed.publish(live.SMS_STATUS, {**data, "status": "failed"}, users=[owner])

    async def _owner(self, contact_id: int) -> int | None:
        async with self._sessions() as session:
            return await session.scalar(select(Contact.owner_id).where(Contact.id == contact_id))


async def _due(session: AsyncSession, gateway: str, after: int, limit: int) -> list[Due]:
    """Queued messages of ``gateway`` due now, in the order they were queued: one query."""
    now = utcnow()
    rows = await session.execute(
        select(Outbox.id, Outbox.interaction_id, Outbox.key, Outbox.sender, SmsMessage)
        .join(SmsMessage, SmsMessage.interaction_id == Outbox.interaction_id)
        .where(
            Outbox.channel == Channel.SMS.value,
            Outbox.source == gateway,
            Outbox.state == "queued",
            Outbox.id > after,
            or_(Outbox.next_attempt_at.is_(None), Outbox.next_attempt_at <= now),
        )
        .order_by(Outbox.id)
        .limit(limit)
    )
    return [
        Due(outbox_id, interaction_id, OutboundSms(key, sender, sms.recipient, sms.text))
        for outbox_id, interaction_id, key, sender, sms in rows
    ]


async def _record_accepted(
    session: AsyncSession, gateway: str, batch: list[tuple[Claimed, SmsAccepted]]
) -> list[tuple[int, int, int, str]]:
    """Store a batch of acceptances; (interaction, contact, owner, status) of those that moved.

    Plain statements, no objects loaded: this runs for every message sent.
    """
    table = cast(Table, Outbox.__table__)
    await session.execute(
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            # not IN (...): an expanding parameter cannot go through executemany
            or_(table.c.state == claims.SENDING, table.c.state == claims.UNCERTAIN),
            func.coalesce(table.c.claimed_by, "") == bindparam("b_holder"),
        )
        .values(
            state=claims.SENT,
            sent_at=bindparam("b_at"),
            reply=bindparam("b_reply"),
            lease_until=None,
        ),
        [
            {
                "b_id": item.outbox_id,
                "b_holder": item.holder,
                "b_at": accepted.accepted_at,
                "b_reply": " ".join(accepted.gateway_ids)[:1000],
            }
            for item, accepted in batch
        ],
    )
    found = await session.execute(
        select(SmsMessage.interaction_id, SmsMessage.id).where(
            SmsMessage.interaction_id.in_([item.interaction_id for item, _ in batch])
        )
    )
    by_interaction = {interaction_id: sms_id for interaction_id, sms_id in found}
    parts = [
        {"sms_id": by_interaction[item.interaction_id], "gateway": gateway,
         "gateway_id": part, "state": accepted.state.value}
        for item, accepted in batch
        if item.interaction_id in by_interaction
        for part in dict.fromkeys(accepted.gateway_ids)
    ]  # fmt: skip
    if parts:  # a part already known (a doubt settled twice) is kept as it is
        await session.execute(
            upsert_insert(session, SmsPart).on_conflict_do_nothing(
                index_elements=["gateway", "gateway_id"]
            ),
            parts,
        )
    await session.execute(  # a message in doubt that the gateway had: no longer in doubt
        update(Interaction)
        .where(
            Interaction.id.in_([item.interaction_id for item, _ in batch]),
            Interaction.status == Status.UNCERTAIN.value,
        )
        .values(status=Status.QUEUED.value)
    )
    moved: list[tuple[int, int, int, str]] = []
    for state in {accepted.state for _, accepted in batch if accepted.state.rank > 0}:
        ids = [item.interaction_id for item, accepted in batch if accepted.state is state]
        rows = await session.execute(
            update(Interaction)
            .where(Interaction.id.in_(ids), Interaction.status == DeliveryState.QUEUED.value)
            .values(status=state.value)
            .returning(Interaction.id, Interaction.contact_id)
        )
        moved += [(i, c, 0, state.value) for i, c in rows if c is not None]
    owners: dict[int, int | None] = {}
    if moved:
        contacts = {c for _, c, _, _ in moved}
        rows = await session.execute(
            select(Contact.id, Contact.owner_id).where(Contact.id.in_(contacts))
        )
        owners = {contact_id: owner for contact_id, owner in rows}
    await session.commit()
    return [(i, c, owners[c] or 0, st) for i, c, _, st in moved if owners.get(c)]


async def _uncertain(session: AsyncSession, gateway: str) -> list[tuple[Claimed, datetime]]:
    """This gateway's messages in doubt, with when each was claimed (the lookup's start)."""
    rows = await session.execute(
        select(Outbox, SmsMessage)
        .join(SmsMessage, SmsMessage.interaction_id == Outbox.interaction_id)
        .where(
            Outbox.channel == Channel.SMS.value,
            Outbox.source == gateway,
            Outbox.state == claims.UNCERTAIN,
        )
        .order_by(Outbox.id)
        .limit(BATCH)
    )
    return [
        (
            Claimed(
                row.id,
                row.interaction_id,
                OutboundSms(row.key, row.sender, sms.recipient, sms.text),
                row.attempts,
                row.claimed_by or "",
            ),
            row.claimed_at or row.created_at,
        )
        for row, sms in rows
    ]


async def _queue_again(session: AsyncSession, item: Claimed) -> None:
    """The gateway surely has no such message: back in the queue, saying why. Commits."""
    result = await session.execute(
        update(Outbox)
        .where(Outbox.id == item.outbox_id, Outbox.state == claims.UNCERTAIN)
        .values(state=claims.QUEUED, last_error=GONE, next_attempt_at=None, claimed_by=None)
    )
    if getattr(result, "rowcount", 0):
        await session.execute(
            update(Interaction)
            .where(
                Interaction.id == item.interaction_id,
                Interaction.status == Status.UNCERTAIN.value,
            )
            .values(status=Status.QUEUED.value)
        )
    await session.commit()
