"""The SMS part of dispatching: which rows a gateway sends, and what its answers write.

A gateway's acceptance names the message's parts (its ids for them); each is
kept, so that the delivery reports on those ids find their message. A
message in doubt that a gateway which keeps a list (Twilio) says it never
got is queued again, with the reason on the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import DeliveryState, OutboundSms, SentLookup, SmsAccepted, SmsGateway
from commhub.domain.interactions import Medium, Status
from commhub.models import Contact, Interaction, Outbox, SmsMessage, SmsPart, utcnow
from commhub.services import live
from commhub.services.dispatch import BATCH, Claimed, Due, RetryPolicy, StatusChange
from commhub.store import outbox as claims
from commhub.store import sms as store
from commhub.store.campaign_rows import campaign_running
from commhub.store.dialect import upsert_insert

GONE: Final = "the gateway had no record of it after the hub stopped mid-send: sent again"


class SmsDelivery:
    """Dispatching SMS: up to 8 tries for a gateway that is down or throttles."""

    channel = Medium.SMS.value
    retry = RetryPolicy(max_attempts=8)
    status_event: str | None = live.SMS_STATUS

    async def due(self, session: AsyncSession, source: str, after: int, limit: int) -> list[Due]:
        return await _due(session, source, after, limit)

    async def send(self, channel: Any, message: Any) -> Any:
        gateway = cast(SmsGateway, channel)
        return await gateway.send(cast(OutboundSms, message))

    async def record_sent(
        self, session: AsyncSession, source: str, batch: Sequence[tuple[Claimed, Any]]
    ) -> list[StatusChange]:
        return await _record_accepted(session, source, batch)

    async def record_failed(
        self, session: AsyncSession, item: Claimed, reason: str
    ) -> tuple[int, int | None] | None:
        outbox = await session.get(Outbox, item.outbox_id)
        interaction = await session.get(Interaction, item.interaction_id)
        message = await store.message_of(session, item.interaction_id)
        if outbox is None or interaction is None or message is None:
            return None  # deleted meanwhile (the contact was erased)
        if outbox.claimed_by != item.holder or outbox.state not in (
            claims.SENDING,
            claims.UNCERTAIN,
        ):
            return None  # settled meanwhile by someone who knew
        outbox.state = claims.FAILED
        outbox.last_error = reason
        message.reason = reason
        interaction.status = DeliveryState.FAILED.value
        interaction.extra = {**interaction.extra, "reason": reason}
        contact_id = interaction.contact_id
        await session.commit()
        return item.interaction_id, contact_id

    async def uncertain(self, session: AsyncSession, source: str) -> list[tuple[Claimed, datetime]]:
        return await _uncertain(session, source)

    async def queue_again(self, session: AsyncSession, item: Claimed) -> None:
        await _queue_again(session, item)

    def lookup(self, channel: Any) -> Any | None:
        return channel if isinstance(channel, SentLookup) else None


async def _due(session: AsyncSession, gateway: str, after: int, limit: int) -> list[Due]:
    """Queued messages of ``gateway`` due now, in the order they were queued: one query."""
    now = utcnow()
    rows = await session.execute(
        select(Outbox.id, Outbox.interaction_id, Outbox.key, Outbox.sender, SmsMessage)
        .join(SmsMessage, SmsMessage.interaction_id == Outbox.interaction_id)
        .where(
            Outbox.channel == Medium.SMS.value,
            Outbox.source == gateway,
            Outbox.state == "queued",
            Outbox.id > after,
            or_(Outbox.next_attempt_at.is_(None), Outbox.next_attempt_at <= now),
            campaign_running(),
        )
        .order_by(Outbox.id)
        .limit(limit)
    )
    return [
        Due(outbox_id, interaction_id, OutboundSms(key, sender, sms.recipient, sms.text))
        for outbox_id, interaction_id, key, sender, sms in rows
    ]


async def _record_accepted(
    session: AsyncSession, gateway: str, batch: Sequence[tuple[Claimed, SmsAccepted]]
) -> list[StatusChange]:
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
    return [StatusChange(i, c, owners[c] or 0, st) for i, c, _, st in moved if owners.get(c)]


async def _uncertain(session: AsyncSession, gateway: str) -> list[tuple[Claimed, datetime]]:
    """This gateway's messages in doubt, with when each was claimed (the lookup's start)."""
    rows = await session.execute(
        select(Outbox, SmsMessage)
        .join(SmsMessage, SmsMessage.interaction_id == Outbox.interaction_id)
        .where(
            Outbox.channel == Medium.SMS.value,
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
