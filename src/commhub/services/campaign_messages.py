"""Writing one chunk of a campaign's messages: rendered, on the card, in the outbox. No commit.

Each recipient's message is rendered from the campaign's frozen templates;
one that cannot be (a template error for this person's values) marks that
recipient ``failed`` with the reason and the others go on. What is written
per recipient is what an operator's message writes — a card entry (with
the campaign named), the message itself, an outbox row — so the one
dispatcher sends it and the one filing path threads replies to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.campaign_mail import Letterhead, letter
from commhub.domain.campaigns import Exclusion, Pace, Window, recipient_zone
from commhub.domain.consent import Purpose
from commhub.domain.email_compose import DraftError
from commhub.domain.interactions import Direction, Medium, Status
from commhub.domain.phones import zone_of_number
from commhub.domain.sms_text import measure
from commhub.domain.template_render import RenderError, render_text
from commhub.models import (
    Campaign,
    CampaignRecipient,
    Contact,
    Email,
    Interaction,
    Outbox,
    SmsMessage,
    utcnow,
)
from commhub.store import campaign_lists as lists
from commhub.store.template_values import values_for

MAX_EMAIL_BYTES = 1_000_000
YIELD_EVERY = 20
FLUSH_EVERY = 100
"""A chunk is rendered and written in slices that let the event loop run between them: on the
embedded default the dispatcher shares it, and a gateway's schedule tolerates stalls of
``dispatch.CATCH_UP_S`` (0.1 s), less than a whole chunk's rendering or writing."""


@dataclass(frozen=True, slots=True)
class Written:
    recipient: CampaignRecipient
    interaction: Interaction
    detail: Email | SmsMessage
    outbox: Outbox


async def write(
    session: AsyncSession,
    campaign: Campaign,
    pending: Sequence[CampaignRecipient],
    contacts: Mapping[int, Contact],
    *,
    pace: Pace,
    public_url: str,
    zone: str,
) -> int:
    """Write the messages of ``pending``; how many were written (the rest failed or left)."""
    window = Window.of(campaign.window_from, campaign.window_to)
    fallback = ZoneInfo(zone)
    now = utcnow()
    language = _language(campaign)
    sender = campaign.content.get("from") or {}
    head = Letterhead.of(sender["address"], sender.get("name", "")) if sender else None
    known = await values_for(session, [r.contact_id for r in pending], locale=language)
    # The address the hub answered at when the campaign started, else this process's setting:
    # a worker with no COMMHUB_PUBLIC_URL still writes links people can open.
    base = str(campaign.content.get("public_url") or public_url).rstrip("/")
    written: list[Written] = []
    for n, recipient in enumerate(pending, 1):
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # the dispatcher shares this loop on the embedded default
        contact = contacts.get(recipient.contact_id)
        if contact is None or contact.merged_into_id is not None:
            _leave(recipient, Exclusion.MERGED, "")
            continue
        values = {**known[contact.id], "unsubscribe_url": f"{base}/u/{recipient.token}"}
        try:
            message = _message(campaign, recipient, values)
        except (RenderError, DraftError) as exc:
            _leave(recipient, Exclusion.RENDER_FAILED, str(exc), state="failed")
            continue
        slot = pace.take(now)
        own = recipient_zone(
            contact.time_zone,
            zone_of_number(recipient.address) if recipient.channel == "sms" else None,
            fallback,
        )
        due = window.next_open(slot, own)
        written.append(
            _rows(campaign, recipient, message, due, base=base, head=head, name=contact.name)
        )
    for start in range(0, len(written), FLUSH_EVERY):
        await _flush(session, written[start : start + FLUSH_EVERY])
    await session.execute(
        update(Campaign).where(Campaign.id == campaign.id).values(updated_at=utcnow())
    )
    return len(written)


async def _flush(session: AsyncSession, written: Sequence[Written]) -> None:
    """Bulk statements, no unit of work: the ORM's per-object bookkeeping was most of a fill."""
    ids = await _insert(session, Interaction, [w.interaction for w in written])
    for item, interaction_id in zip(written, ids, strict=True):
        item.detail.interaction_id = interaction_id
        item.outbox.interaction_id = interaction_id
    emails = [w.detail for w in written if isinstance(w.detail, Email)]
    if emails:
        await _insert(session, Email, emails)
        await session.execute(  # a campaign message starts its own thread
            update(Email)
            .where(Email.interaction_id.in_([e.interaction_id for e in emails]))
            .values(thread_id=Email.id)
            .execution_options(synchronize_session=False)
        )
    texts = [w.detail for w in written if isinstance(w.detail, SmsMessage)]
    if texts:
        await _insert(session, SmsMessage, texts)
    outbox_ids = await _insert(session, Outbox, [w.outbox for w in written])
    for item, outbox_id in zip(written, outbox_ids, strict=True):
        # Loaded in this session: the change is written with the commit, in one executemany.
        item.recipient.state = lists.QUEUED
        item.recipient.outbox_id = outbox_id


async def _insert(session: AsyncSession, model: Any, rows: Sequence[Any]) -> list[int]:
    """Insert unsaved ``rows`` of ``model`` as they were set; their ids, in their order."""
    keys = [a.key for a in sa_inspect(model).column_attrs]
    values = [{k: row.__dict__[k] for k in keys if k in row.__dict__} for row in rows]
    found = await session.execute(
        insert(model).returning(model.id, sort_by_parameter_order=True), values
    )
    return [int(i) for i in found.scalars()]


def _language(campaign: Campaign) -> str:
    """The language its templates are written in: money and dates are shown that way."""
    for part in campaign.content.values():
        if isinstance(part, dict) and part.get("language"):
            return str(part["language"])
    return "en"


def _leave(recipient: CampaignRecipient, why: Exclusion, detail: str, state: str = "") -> None:
    recipient.state = state or lists.EXCLUDED
    recipient.reason = why.value if not detail else f"{why.value}: {detail}"


@dataclass(frozen=True, slots=True)
class _Message:
    subject: str
    text: str
    html: str | None


def _message(campaign: Campaign, recipient: CampaignRecipient, values: dict[str, Any]) -> _Message:
    part = campaign.content.get(recipient.channel) or {}
    return _Message(
        subject=" ".join(render_text(part.get("subject") or "", values).split()),
        text=render_text(part.get("text") or "", values),
        html=render_text(part["html"], values, html=True) if part.get("html") else None,
    )


def _rows(
    campaign: Campaign,
    recipient: CampaignRecipient,
    message: _Message,
    due: Any,
    *,
    base: str,
    head: Letterhead | None,
    name: str,
) -> Written:
    key = f"campaign:{campaign.id}:{recipient.contact_id}:{recipient.channel}"
    now = utcnow()
    summary = " ".join(message.text.split())[:500]
    if recipient.channel == Medium.EMAIL.value:
        assert head is not None
        made = letter(
            head,
            to=recipient.address,
            to_name=name,
            subject=message.subject,
            text=message.text,
            html=message.html,
            now=now,
            unsubscribe=_unsubscribe(campaign, recipient, head.sender_address, base),
            max_bytes=MAX_EMAIL_BYTES,
        )
        interaction = _interaction(campaign, recipient, made.message_id, head.sender_address)
        interaction.subject = message.subject[:500]
        interaction.summary = summary
        detail: Email | SmsMessage = Email(
            mailbox=campaign.mailbox or "",
            message_id=made.message_id,
            in_reply_to="",
            references="",
            kind="message",
            sender=head.sender_address,
            recipients={"to": [recipient.address], "cc": [], "reply_to": []},
            text=message.text,
            html=message.html,
            attachments={"items": []},
            raw=made.raw,
            size=len(made.raw),
        )
        sender_address = head.sender_address
        source = campaign.mailbox or ""
    else:
        sender_address = str(campaign.content.get("sms_from") or "")
        interaction = _interaction(campaign, recipient, key, sender_address)
        interaction.summary = summary
        shape = measure(message.text)
        detail = SmsMessage(
            gateway=campaign.sms_gateway or "",
            sender=sender_address[:64],
            recipient=recipient.address,
            text=message.text,
            encoding=shape.encoding.value,
            segments=shape.segments,
        )
        interaction.extra = {**interaction.extra, "segments": shape.segments}
        source = campaign.sms_gateway or ""
    outbox = Outbox(
        key=key,
        channel=recipient.channel,
        source=source,
        contact_id=recipient.contact_id,
        campaign_id=campaign.id,
        sender=sender_address,
        recipients={"to": [recipient.address]},
        state="queued",
        next_attempt_at=due,
    )
    return Written(recipient, interaction, detail, outbox)


def _unsubscribe(
    campaign: Campaign, recipient: CampaignRecipient, mailbox: str, base: str
) -> tuple[str, ...]:
    """The List-Unsubscribe targets of a marketing message: the one-click link and a mailto."""
    if campaign.purpose != Purpose.MARKETING.value:
        return ()
    targets = [f"{base}/u/{recipient.token}"] if base.startswith(("https://", "http://")) else []
    if mailbox:
        targets.append(f"mailto:{mailbox}?subject=unsubscribe%20{recipient.token}")
    return tuple(targets)


def _interaction(
    campaign: Campaign, recipient: CampaignRecipient, external_id: str, sender: str
) -> Interaction:
    return Interaction(
        channel=recipient.channel,
        direction=Direction.OUTBOUND.value,
        status=Status.QUEUED.value,
        external_id=external_id,
        contact_id=recipient.contact_id,
        occurred_at=utcnow(),
        from_address=sender,
        to_address=recipient.address,
        campaign_id=campaign.id,
        extra={"kind": "campaign", "campaign": campaign.name},
    )
