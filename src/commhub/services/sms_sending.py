"""Sending an SMS: checked, counted, routed to a gateway and written down before it goes.

The outbox row is written first, in the same transaction as the message on
the card (status ``queued``); the gateway's dispatcher (``services/dispatch.py``) takes it
from there at the gateway's pace. What cannot be sent as asked fails here,
before anything is stored: no number, an opted-out number, an empty or
too long text, no gateway for the sender number or purpose asked for.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import SmsGateway
from commhub.domain import phones
from commhub.domain.interactions import Direction, Medium, NewInteraction, Status
from commhub.domain.sms_text import MAX_SEGMENTS, SmsShape, SmsTextError, measure
from commhub.models import Contact, ContactPoint, Interaction, Outbox, SmsMessage, utcnow
from commhub.services.database import Database
from commhub.services.errors import InvalidInput, NotFound
from commhub.services.identify import Verdict, identify
from commhub.services.outbox import reused_key
from commhub.store import interactions as interaction_store
from commhub.store import suppressions
from commhub.store.outbox import request_hash

PHONE = "phone"


@dataclass(frozen=True, slots=True)
class SmsRequest:
    """What a person (or a campaign) asks to send; ``to`` or ``contact_id`` or both."""

    text: str
    to: str | None = None
    contact_id: int | None = None
    sender: str | None = None
    """One of our numbers: the gateway that serves it sends."""
    purpose: str | None = None
    """``transactional``, ``marketing``…: a gateway chosen for it sends."""
    key: str = ""
    fingerprint: str = ""
    """A digest of what the client asked (``store.outbox.request_hash``): a ``key`` used
    again for something else is refused, as payment APIs do."""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SmsView:
    """One SMS as the card shows it; ``outbox`` is its sending row (``None`` when received)."""

    interaction: Interaction
    message: SmsMessage
    outbox: Outbox | None


def preview(text: str) -> SmsShape:
    """Encoding and segments of ``text``, as stored with the message when it is sent."""
    return measure(text)


def route(gateways: Sequence[SmsGateway], *, sender: str | None, purpose: str | None) -> SmsGateway:
    """The gateway for a sender number or a purpose; else the first one configured."""
    if not gateways:
        raise InvalidInput("sender", "no SMS gateway is configured")
    if sender:
        for gateway in gateways:
            if sender in gateway.numbers:
                return gateway
        raise InvalidInput("sender", f"no SMS gateway sends from {sender!r}")
    if purpose:
        for gateway in gateways:
            if purpose in gateway.purposes:
                return gateway
        for gateway in gateways:
            if not gateway.purposes:
                return gateway
        raise InvalidInput("purpose", f"no SMS gateway is set up for {purpose!r}")
    return gateways[0]


async def send(
    db: Database,
    gateways: Sequence[SmsGateway],
    request: SmsRequest,
    *,
    asked: Mapping[str, Any] | None = None,
    user_id: int | None,
    region: str,
) -> tuple[SmsView, bool]:
    """Queue the message (:func:`queue_sms`); the message as stored, and whether it is new.

    ``asked`` is what the client sent with its idempotency key: a key used
    again with something else asked is refused. The gateway's sender takes
    the row from the outbox; the caller wakes it when the message is new.
    """
    if request.key and asked is not None:
        request = replace(request, fingerprint=request_hash(asked))
    async with db() as session:
        try:
            row, created = await queue_sms(
                session, gateways, request, user_id=user_id, region=region
            )
        except SmsTextError as exc:
            raise InvalidInput("text", str(exc)) from None
        return await _view(session, row.interaction_id), created


async def message(db: Database, interaction_id: int) -> SmsView:
    """One SMS, sent or received, with its delivery state."""
    async with db() as session:
        return await _view(session, interaction_id)


async def _view(session: AsyncSession, interaction_id: int) -> SmsView:
    row = (
        await session.execute(
            select(Interaction, SmsMessage, Outbox)
            .join(SmsMessage, SmsMessage.interaction_id == Interaction.id)
            .outerjoin(Outbox, Outbox.interaction_id == Interaction.id)
            .where(Interaction.id == interaction_id)
        )
    ).first()
    if row is None:
        raise NotFound("SMS", interaction_id)
    interaction, sms, outbox = row
    return SmsView(interaction, sms, outbox)


async def queue_sms(
    session: AsyncSession,
    gateways: Sequence[SmsGateway],
    request: SmsRequest,
    *,
    user_id: int | None,
    region: str,
) -> tuple[Outbox, bool]:
    """Check, store and queue the message; commits. Returns (outbox row, created).

    A ``key`` already used returns the row it made the first time, so a
    client retrying after a timeout does not send twice.
    """
    if request.key:
        existing = await reused_key(session, request.key, request.fingerprint)
        if existing is not None:
            return existing, False
    text = request.text
    if not text.strip():
        raise InvalidInput("text", "the message is empty")
    shape = measure(text)
    if shape.segments > MAX_SEGMENTS:
        raise InvalidInput(
            "text",
            f"{shape.segments} segments ({shape.encoding.value}, {shape.units} units): "
            f"at most {MAX_SEGMENTS} go out as one message",
        )
    recipient, contact_id = await _recipient(session, request, region)
    listed = await suppressions.suppressed(session, Medium.SMS, [recipient])
    if recipient in listed:
        entry = listed[recipient]
        raise InvalidInput("to", f"{recipient} opted out of SMS ({entry.reason or entry.source})")
    gateway = route(gateways, sender=request.sender, purpose=request.purpose)
    sender = request.sender or (gateway.numbers[0] if gateway.numbers else "")
    key = request.key or f"sms:{uuid.uuid4().hex}"
    interaction, _ = await interaction_store.record(
        session,
        NewInteraction(
            channel=Medium.SMS,
            direction=Direction.OUTBOUND,
            status=Status.QUEUED,
            external_id=key,
            occurred_at=utcnow(),
            from_address=sender,
            to_address=recipient,
            contact_id=contact_id,
            operator_id=user_id,
            summary=" ".join(text.split())[:500],
            extra={"gateway": gateway.name, "segments": shape.segments, **request.extra},
        ),
    )
    session.add(
        SmsMessage(
            interaction_id=interaction.id,
            gateway=gateway.name,
            sender=sender[:64],
            recipient=recipient,
            text=text,
            encoding=shape.encoding.value,
            segments=shape.segments,
        )
    )
    outbox = Outbox(
        key=key,
        channel=Medium.SMS.value,
        source=gateway.name,
        interaction_id=interaction.id,
        contact_id=contact_id,
        user_id=user_id,
        sender=sender,
        recipients={"to": [recipient]},
        state="queued",
        request_hash=request.fingerprint or None,
    )
    session.add(outbox)
    await session.commit()
    return outbox, True


async def _recipient(
    session: AsyncSession, request: SmsRequest, region: str
) -> tuple[str, int | None]:
    """The E.164 number to send to and the contact it belongs to."""
    contact_id = request.contact_id
    if request.to:
        query = phones.read_number(request.to, region)
        if query.e164 is None:
            raise InvalidInput("to", f"{request.to!r} is not a phone number one can text")
        if contact_id is None:
            found = await identify(session, query.e164, region=region)
            if found.verdict is Verdict.MATCH:
                contact_id = found.contact_ids[0]
        return query.e164, contact_id
    if contact_id is None:
        raise InvalidInput("to", "give a number (to) or a contact (contact_id)")
    if await session.get(Contact, contact_id) is None:
        raise NotFound("contact", contact_id)
    number = await session.scalar(
        select(ContactPoint.value)
        .where(ContactPoint.contact_id == contact_id, ContactPoint.kind == PHONE)
        .order_by(ContactPoint.id)
        .limit(1)
    )
    if number is None:
        raise InvalidInput("contact_id", f"contact {contact_id} has no phone number")
    return number, contact_id
