"""Filing SMS traffic: a received message on the sender's card once, a report on its message.

A received message is keyed by its gateway and the gateway's id, so a
webhook delivered five times or a deliver_sm the SMSC repeats is one
interaction. Its sender is identified like a caller (one phone identity, a
number in any format). A message whose whole text is an opt-out word puts
the number on the SMS suppression list; an opt-in word lifts it.

A delivery report names one part of a message we sent. Reports arrive more
than once and out of order, so a part's state and its message's status
only ever move forward (queued < sent < delivered/undelivered/failed).
A report on a message whose hand-over a crash cut off (outbox ``uncertain``)
is the gateway's proof that it took it: by our own key where the gateway
carries it back (Kannel's dlr-url), else by the phone and the start of the
text it quotes (an SMPP receipt), the oldest such message in doubt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import DeliveryState, SmsReceived, SmsReport
from commhub.domain import phones
from commhub.domain.interactions import Channel, Direction, NewInteraction, Status
from commhub.domain.opt_outs import Instruction, Keywords
from commhub.domain.sms_text import measure
from commhub.models import Contact, Interaction, Outbox, SmsMessage
from commhub.services.calls import CallerNumber, contact_for_caller
from commhub.store import interactions as interaction_store
from commhub.store import outbox as claims
from commhub.store import sms as store
from commhub.store import suppressions

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    UNMATCHED = "unmatched"
    """A report on an id we do not know (yet: it may beat the send's own answer)."""


@dataclass(frozen=True, slots=True)
class Filed:
    outcome: Outcome
    interaction_id: int | None = None
    owner_id: int | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def external_id(source: str, gateway_id: str) -> str:
    """Gateways number their messages each on their own: the key names the gateway."""
    return f"{source}:{gateway_id}"


async def file_received(
    session: AsyncSession,
    event: SmsReceived,
    *,
    region: str,
    keywords: Keywords,
    create_unknown: bool,
) -> Filed:
    """Store ``event`` on its sender's card (once) and act on STOP/START; commits."""
    key = external_id(event.source, event.external_id)
    number = CallerNumber(event.sender, region, phones.read_number(event.sender, region))
    contact_id = await contact_for_caller(session, number, name="", create=create_unknown)
    address = number.query.e164 or event.sender.strip()
    shape = measure(event.text)
    interaction, created = await interaction_store.record(
        session,
        NewInteraction(
            channel=Channel.SMS,
            direction=Direction.INBOUND,
            status=Status.RECEIVED,
            external_id=key,
            occurred_at=event.received_at,
            from_address=address,
            to_address=event.recipient,
            contact_id=contact_id,
            summary=" ".join(event.text.split())[:500],
            extra={"gateway": event.source, "parts": event.parts},
        ),
    )
    if not created:
        known = interaction.id
        await session.rollback()  # expires the row: its id is read first
        return Filed(Outcome.DUPLICATE, known)
    message = SmsMessage(
        interaction_id=interaction.id,
        gateway=event.source,
        sender=address[:64],
        recipient=event.recipient[:64],
        text=event.text,
        encoding=shape.encoding.value,
        segments=max(shape.segments, event.parts),
    )
    session.add(message)
    instruction = keywords.instruction(event.text)
    if instruction is Instruction.STOP:
        await suppressions.suppress(
            session,
            Channel.SMS,
            address,
            reason=f"replied {event.text.strip()[:40]!r}",
            source=f"sms {key}",
        )
    elif instruction is Instruction.START:
        await suppressions.lift_address(session, Channel.SMS, address)
    owner = await _owner(session, contact_id)
    await session.commit()
    if instruction is not None:
        log.info("%s: %s opted %s", event.source, address, "out" if instruction == "stop" else "in")
    summary = {
        "interaction_id": interaction.id,
        "contact_id": contact_id,
        "from": address,
        "to": event.recipient,
        "text": event.text[:500],
        "opt": instruction.value if instruction else None,
    }
    return Filed(Outcome.NEW, interaction.id, owner, summary)


async def apply_report(session: AsyncSession, report: SmsReport) -> Filed:
    """Move the reported part, and its message, forward; never backwards. Commits."""
    found = await store.part(session, report.source, report.gateway_id)
    if found is None and await _settle_doubt(session, report):
        found = await store.part(session, report.source, report.gateway_id)
    if found is None:
        await session.rollback()
        return Filed(Outcome.UNMATCHED)
    part, message, interaction = found
    if report.state.rank <= DeliveryState(part.state).rank:
        known = interaction.id
        await session.rollback()  # expires the rows: the id is read first
        return Filed(Outcome.UNCHANGED, known)
    part.state = report.state.value
    part.reason = report.reason or None
    parts = await store.parts_of(session, message.id)
    state = overall(DeliveryState(p.state) for p in parts)
    changed = _moves(_delivery_state(interaction.status), state)
    if changed:
        interaction.status = state.value
        if report.reason and state in (DeliveryState.UNDELIVERED, DeliveryState.FAILED):
            message.reason = report.reason
            interaction.extra = {**interaction.extra, "reason": report.reason}
    owner = await _owner(session, interaction.contact_id)
    await session.commit()
    summary = {
        "interaction_id": interaction.id,
        "contact_id": interaction.contact_id,
        "status": interaction.status,
        "reason": message.reason,
    }
    return Filed(Outcome.CHANGED if changed else Outcome.UNCHANGED, interaction.id, owner, summary)


async def _settle_doubt(session: AsyncSession, report: SmsReport) -> bool:
    """Settle the uncertain message this report proves the gateway took; no commit."""
    doubt = (
        select(Outbox, SmsMessage)
        .join(SmsMessage, SmsMessage.interaction_id == Outbox.interaction_id)
        .where(Outbox.source == report.source, Outbox.state == claims.UNCERTAIN)
    )
    row = (await session.execute(doubt.where(Outbox.key == report.gateway_id))).first()
    if row is None and report.handset:
        candidates = await session.execute(
            doubt.where(SmsMessage.recipient == report.handset).order_by(Outbox.id).limit(50)
        )
        head = " ".join(report.text_head.split())
        row = next(
            (c for c in candidates if " ".join(c[1].text.split()).startswith(head)),
            None,
        )
    if row is None:
        return False
    outbox, message = row[0], row[1]
    outbox.state = claims.SENT
    outbox.sent_at = report.at
    outbox.reply = report.gateway_id[:1000]
    outbox.last_error = f"{outbox.last_error}; the gateway's report proved it was taken"[:2000]
    await store.add_parts(session, message, [report.gateway_id], DeliveryState.QUEUED.value)
    interaction = await session.get(Interaction, outbox.interaction_id)
    if interaction is not None and interaction.status == Status.UNCERTAIN.value:
        interaction.status = Status.QUEUED.value
    await session.flush()
    log.info("SMS %s in doubt: %s's report shows it was sent", outbox.key, report.source)
    return True


def _delivery_state(status: str) -> DeliveryState:
    """An SMS interaction's status as a delivery state; one in doubt counts as queued."""
    try:
        return DeliveryState(status)
    except ValueError:
        return DeliveryState.QUEUED


def overall(states: Iterable[DeliveryState]) -> DeliveryState:
    """A message's state from its parts': any part lost loses it; delivered when all are."""
    found = list(states)
    for bad in (DeliveryState.FAILED, DeliveryState.UNDELIVERED):
        if bad in found:
            return bad
    if found and all(s is DeliveryState.DELIVERED for s in found):
        return DeliveryState.DELIVERED
    if any(s.rank >= 1 for s in found):
        return DeliveryState.SENT
    return DeliveryState.QUEUED


def _moves(current: DeliveryState, state: DeliveryState) -> bool:
    """Forward only; among final states a lost part turns ``delivered`` into its failure."""
    if state.rank != current.rank:
        return state.rank > current.rank
    return current is DeliveryState.DELIVERED and state is not DeliveryState.DELIVERED


async def _owner(session: AsyncSession, contact_id: int | None) -> int | None:
    if contact_id is None:
        return None
    return await session.scalar(select(Contact.owner_id).where(Contact.id == contact_id))
