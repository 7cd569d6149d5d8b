"""Filing one received e-mail: on the sender's card, in its thread, exactly once.

The message's Message-ID is the interaction's external id, so the same mail
found again — after a restart, a UIDVALIDITY change, in a second folder, or
our own sent message coming back as a copy — is recognised and not logged
twice. A bounce marks the message it reports on and suppresses a dead
address; an auto-reply is marked so nothing answers it. What cannot be
parsed is kept raw with the reason. The folder's cursor moves in the same
transaction, so a restart resumes right after the last message stored.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import EmailArrived
from commhub.domain.bounces import Bounce
from commhub.domain.complaints import Complaint
from commhub.domain.consent import Purpose
from commhub.domain.contacts import ConsentChoice
from commhub.domain.email_messages import (
    EmailParseError,
    ParsedEmail,
    attachment_item,
    display,
    parse_email,
)
from commhub.domain.interactions import Direction, Medium, NewInteraction, Status
from commhub.models import Campaign, Contact, Email, Interaction, Outbox, utcnow
from commhub.services.counterparts import contact_for
from commhub.services.database import Database
from commhub.services.deal_rules import open_for_inbound
from commhub.services.filing import Filed, Outcome
from commhub.services.live import EMAIL_RECEIVED, LiveFeed
from commhub.services.unsubscribes import unsubscribe_by_mail
from commhub.store import contacts as contact_store
from commhub.store import emails as store
from commhub.store import interactions as interaction_store
from commhub.store import suppressions
from commhub.store.campaign_rows import COMPLAINED

log = logging.getLogger(__name__)

MAX_EXTERNAL_ID: Final = 255
OUTBOUND_OPEN: Final = ("queued", "sent", "failed")
"""Statuses a bounce may replace (a failed send that later bounces is still a bounce)."""


class EmailKind(StrEnum):
    MESSAGE = "message"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"


@dataclass(frozen=True, slots=True)
class OwnAddress:
    """The mailbox a message was found in: its own address tells our copies from theirs."""

    name: str
    address: str


def external_id(message_id: str, raw: bytes) -> str:
    """The interaction's key: the Message-ID, or a digest of the bytes when there is none."""
    if message_id and len(message_id) <= MAX_EXTERNAL_ID:
        return message_id
    basis = message_id.encode("utf-8", "replace") if message_id else raw
    return "sha256:" + hashlib.sha256(basis).hexdigest()


async def file_email(
    session: AsyncSession,
    arrived: EmailArrived,
    mailbox: OwnAddress,
    *,
    region: str,
    create_unknown: bool,
) -> Filed:
    """Store ``arrived`` (or keep it as unreadable) and advance its folder's cursor in
    ``session``; the caller commits."""
    try:
        parsed = parse_email(arrived.raw)
    except EmailParseError as exc:
        return await keep_unreadable(session, arrived, str(exc))
    filed = await _file(session, arrived, parsed, mailbox, region, create_unknown)
    await store.advance_cursor(
        session, arrived.source, arrived.folder, uidvalidity=arrived.uidvalidity, uid=arrived.uid
    )
    return filed


async def keep_unreadable(session: AsyncSession, arrived: EmailArrived, error: str) -> Filed:
    """Keep the raw bytes with the reason for an admin; the cursor moves past it. No commit."""
    log.warning(
        "%s/%s uid %d kept as unreadable: %s", arrived.source, arrived.folder, arrived.uid, error
    )
    await store.keep_failure(
        session,
        source=arrived.source,
        folder=arrived.folder,
        uidvalidity=arrived.uidvalidity,
        uid=arrived.uid,
        raw=arrived.raw,
        error=error,
    )
    await store.advance_cursor(
        session, arrived.source, arrived.folder, uidvalidity=arrived.uidvalidity, uid=arrived.uid
    )
    return Filed(Outcome.KEPT, summary={"error": error})


async def _file(
    session: AsyncSession,
    arrived: EmailArrived,
    parsed: ParsedEmail,
    mailbox: OwnAddress,
    region: str,
    create_unknown: bool,
) -> Filed:
    key = external_id(parsed.message_id, arrived.raw)
    known = await session.scalar(
        select(Interaction.id).where(
            Interaction.channel == Medium.EMAIL.value, Interaction.external_id == key
        )
    )
    if known is not None:
        return Filed(Outcome.DUPLICATE, interaction_id=known)
    sender = parsed.sender.address if parsed.sender else ""
    ours = bool(sender) and sender == mailbox.address
    kind = _kind(parsed)
    parents = await store.by_message_ids(session, parsed.thread_ids)
    parent = parents[0] if parents else None
    contact_id: int | None = None
    candidates: list[int] = []
    if kind is EmailKind.BOUNCE and parsed.bounce is not None:
        contact_id = await _apply_bounce(session, parsed.bounce, key)
    if kind is EmailKind.COMPLAINT and parsed.complaint is not None:
        contact_id = await _apply_complaint(session, parsed.complaint, key)
    if contact_id is None:
        counterpart = _counterpart(parsed, ours)
        contact_id, candidates = await _contact(
            session,
            counterpart,
            parsed,
            region,
            create=create_unknown and kind is EmailKind.MESSAGE,
        )
    if contact_id is None and parent is not None and not candidates:
        contact_id = await _contact_of(session, parent)
    interaction, created = await interaction_store.record(
        session, _interaction(arrived, parsed, key, kind, ours, contact_id, candidates)
    )
    if not created:  # another folder's watcher filed it a moment ago
        return Filed(Outcome.DUPLICATE, interaction_id=interaction.id)
    email = _email_row(arrived, parsed, mailbox, interaction.id, kind)
    email.thread_id = parent.thread_id if parent is not None else None
    email.needs_assignment = contact_id is None and kind is EmailKind.MESSAGE and not ours
    session.add(email)
    await session.flush()
    if email.thread_id is None:
        email.thread_id = email.id
    elif contact_id is not None:
        await _place_thread(session, email.thread_id, contact_id)
    if not ours and kind is EmailKind.MESSAGE:
        if parent is not None:
            interaction.campaign_id = await _campaign_of(session, parent)
        await unsubscribe_by_mail(session, parsed.subject, how=f"an e-mail ({key})")
        await open_for_inbound(session, interaction, region=region)
    owner = None
    if contact_id is not None:
        owner = await session.scalar(select(Contact.owner_id).where(Contact.id == contact_id))
    return Filed(
        Outcome.NEW,
        interaction_id=interaction.id,
        contact_id=contact_id,
        owner_id=owner,
        summary=_summary(interaction, email, parsed),
    )


async def _apply_complaint(session: AsyncSession, complaint: Complaint, key: str) -> int | None:
    """Someone reported our message as spam: no more marketing e-mail to them, and it counts.

    The message is found by its Message-ID; its outbox row becomes
    ``complained`` (campaign results and the auto-pause count it), the person's
    e-mail consent for the campaign's purpose (marketing for any other message)
    is withdrawn with the report as evidence, and the address is suppressed.
    """
    originals = await store.by_message_ids(session, [complaint.original_message_id])
    row = await session.get(Interaction, originals[0].interaction_id) if originals else None
    if row is None or row.direction != Direction.OUTBOUND.value:
        address = complaint.recipient
        contact_id = None
        purpose = Purpose.MARKETING.value
    else:
        address = complaint.recipient or row.to_address
        contact_id = row.contact_id
        outbox = await session.scalar(select(Outbox).where(Outbox.interaction_id == row.id))
        if outbox is not None and outbox.state in ("sent", "dismissed"):
            outbox.state = COMPLAINED
        purpose = Purpose.MARKETING.value
        if row.campaign_id is not None:
            purpose = (
                await session.scalar(select(Campaign.purpose).where(Campaign.id == row.campaign_id))
                or purpose
            )
    if address:
        await suppressions.suppress(
            session,
            Medium.EMAIL,
            address,
            reason=f"complaint ({complaint.feedback_type})",
            source=f"feedback report {key}",
        )
    if contact_id is not None:
        await contact_store.record_consents(
            session,
            contact_id,
            [ConsentChoice("email", purpose, False)],
            "complaint",
            evidence=f"feedback report {key} ({complaint.feedback_type}) on message "
            f"{complaint.original_message_id}",
        )
    return contact_id


async def _campaign_of(session: AsyncSession, parent: Email) -> int | None:
    """The campaign whose message a reply answers, if it answers one: shown in its results."""
    return await session.scalar(
        select(Interaction.campaign_id).where(Interaction.id == parent.interaction_id)
    )


async def _place_thread(session: AsyncSession, thread_id: int, contact_id: int) -> None:
    """Earlier messages of the thread that were on no card join this one (we wrote first)."""
    members = select(Email.interaction_id).where(Email.thread_id == thread_id)
    await session.execute(
        update(Interaction)
        .where(Interaction.id.in_(members), Interaction.contact_id.is_(None))
        .values(contact_id=contact_id)
    )
    await session.execute(
        update(Email).where(Email.thread_id == thread_id).values(needs_assignment=False)
    )


def _kind(parsed: ParsedEmail) -> EmailKind:
    if parsed.complaint is not None:
        return EmailKind.COMPLAINT
    if parsed.bounce is not None:
        return EmailKind.BOUNCE
    if parsed.auto_reply:
        return EmailKind.AUTO_REPLY
    return EmailKind.MESSAGE


def _counterpart(parsed: ParsedEmail, ours: bool) -> str:
    """Whose card: the sender's, or for our own copy (a Sent folder), the first recipient's."""
    if ours:
        for recipient in (*parsed.to, *parsed.cc):
            if recipient.valid:
                return recipient.address
        return ""
    if parsed.reply_to and parsed.reply_to[0].valid and parsed.sender is None:
        return parsed.reply_to[0].address
    return parsed.sender.address if parsed.sender and parsed.sender.valid else ""


async def _contact(
    session: AsyncSession, address: str, parsed: ParsedEmail, region: str, *, create: bool
) -> tuple[int | None, list[int]]:
    if not address:
        return None, []
    name = parsed.sender.name if parsed.sender else ""
    found = await contact_for(session, address, region=region, name=name, create=create)
    return found.contact_id, list(found.candidates)


async def _contact_of(session: AsyncSession, parent: Email) -> int | None:
    return await session.scalar(
        select(Interaction.contact_id).where(Interaction.id == parent.interaction_id)
    )


async def _apply_bounce(session: AsyncSession, bounce: Bounce, key: str) -> int | None:
    """Mark the message the bounce reports on; suppress addresses that failed for good."""
    for recipient in bounce.recipients:
        if recipient.permanent:
            reason = " ".join(filter(None, (recipient.status, recipient.reason))) or "hard bounce"
            await suppressions.suppress(
                session, Medium.EMAIL, recipient.address, reason=reason, source=f"bounce {key}"
            )
    if not bounce.original_message_id:
        return None
    originals = await store.by_message_ids(session, [bounce.original_message_id])
    if not originals:
        return None
    original = originals[0]
    row = await session.get(Interaction, original.interaction_id)
    if row is None or row.direction != Direction.OUTBOUND.value:
        return None
    if bounce.permanent and row.status in OUTBOUND_OPEN:
        row.status = Status.BOUNCED.value
        row.extra = {**row.extra, "bounce": bounce.reason or "undeliverable", "bounced_by": key}
        outbox = await session.scalar(select(Outbox).where(Outbox.interaction_id == row.id))
        if outbox is not None:
            outbox.state = "bounced"
            outbox.last_error = bounce.reason or "undeliverable"
    return row.contact_id


def _interaction(
    arrived: EmailArrived,
    parsed: ParsedEmail,
    key: str,
    kind: EmailKind,
    ours: bool,
    contact_id: int | None,
    candidates: list[int],
) -> NewInteraction:
    extra: dict[str, Any] = {"kind": kind.value}
    if candidates:
        extra["candidates"] = candidates
    if arrived.truncated:
        extra["truncated"] = True
    to = parsed.to[0].address if parsed.to else ""
    return NewInteraction(
        channel=Medium.EMAIL,
        direction=Direction.OUTBOUND if ours else Direction.INBOUND,
        status=Status.SENT if ours else Status.RECEIVED,
        external_id=key,
        occurred_at=_when(arrived, parsed, ours),
        from_address=parsed.sender.address if parsed.sender else "",
        to_address=to,
        contact_id=contact_id,
        subject=parsed.subject[:500],
        summary=parsed.summary,
        extra=extra,
    )


def _when(arrived: EmailArrived, parsed: ParsedEmail, ours: bool) -> datetime:
    """When the server received it (a sender's Date may be anything); ours: when we wrote it."""
    if ours and parsed.date is not None:
        return parsed.date
    return arrived.received_at or parsed.date or utcnow()


def _email_row(
    arrived: EmailArrived,
    parsed: ParsedEmail,
    mailbox: OwnAddress,
    interaction_id: int,
    kind: EmailKind,
) -> Email:
    return Email(
        interaction_id=interaction_id,
        mailbox=mailbox.name,
        message_id=parsed.message_id[:500],
        in_reply_to=" ".join(parsed.in_reply_to)[:500],
        references=" ".join(parsed.references),
        kind=kind.value,
        sender=display(parsed.sender)[:500] if parsed.sender else "",
        recipients={
            "to": [display(a) for a in parsed.to],
            "cc": [display(a) for a in parsed.cc],
            "reply_to": [display(a) for a in parsed.reply_to],
        },
        text=parsed.text,
        html=parsed.html,
        attachments={"items": [attachment_item(a) for a in parsed.attachments]},
        raw=arrived.raw,
        size=arrived.size or len(arrived.raw),
        truncated=arrived.truncated,
        folder=arrived.folder,
        uid=arrived.uid,
    )


def _summary(interaction: Interaction, email: Email, parsed: ParsedEmail) -> dict[str, Any]:
    """What the live feed tells the contact's owner about a new message."""
    return {
        "interaction_id": interaction.id,
        "contact_id": interaction.contact_id,
        "thread_id": email.thread_id,
        "kind": email.kind,
        "from": email.sender,
        "subject": parsed.subject,
        "summary": interaction.summary[:200],
    }


class EmailStep:
    """The e-mail step in filing: each message on its card, settled back to its mailbox.

    A mailbox adapter waits on each message's ``settled`` before it flags or
    moves it on the server, so nothing here drops a message silently: one the
    store refuses is kept raw with the reason, and either way it is settled.
    A message whose adapter went away (``settled`` cancelled) is not filed: it
    is offered again from the folder's cursor.
    """

    name = "email"
    waits = True

    def __init__(
        self,
        *,
        feed: LiveFeed,
        region: str,
        create_unknown: bool,
        mailboxes: Mapping[str, str] | None = None,
    ) -> None:
        self._feed = feed
        self._region = region
        self._create_unknown = create_unknown
        self._mailboxes = dict(mailboxes or {})
        self.filed = 0
        self.duplicates = 0
        self.failed = 0
        self.last_error: str | None = None

    def add_mailbox(self, name: str, address: str) -> None:
        """Tell the step a channel's own address, so its copies of our mail are ours."""
        self._mailboxes[name] = address

    def key(self, event: EmailArrived) -> Hashable:
        return (event.source, event.folder, event.uidvalidity, event.uid, id(event))

    def wanted(self, event: EmailArrived) -> bool:
        return not event.settled.done()

    async def file(self, session: AsyncSession, events: Sequence[EmailArrived]) -> list[Filed]:
        return [
            await file_email(
                session,
                event,
                OwnAddress(event.source, self._mailboxes.get(event.source, "")),
                region=self._region,
                create_unknown=self._create_unknown,
            )
            for event in events
        ]

    async def refuse(self, db: Database, event: EmailArrived, error: Exception) -> Filed:
        async with db() as session:
            kept = await keep_unreadable(
                session, event, f"could not be filed: {type(error).__name__}: {error}"
            )
            await session.commit()
        return kept

    def done(self, event: EmailArrived, result: Filed) -> None:
        if result.outcome is Outcome.NEW:
            self.filed += 1
            self.last_error = None
        elif result.outcome is Outcome.DUPLICATE:
            self.duplicates += 1
        else:
            self.failed += 1
            self.last_error = str(result.summary.get("error", ""))
        if not event.settled.done():
            event.settled.set_result(None)
        if result.outcome is Outcome.NEW and result.owner_id is not None and self._feed.anyone:
            self._feed.publish(EMAIL_RECEIVED, result.summary, users=[result.owner_id])

    def drop(self, event: EmailArrived, why: str) -> None:
        event.settled.cancel()  # not filed: the adapter finds it again from its cursor

    async def stop(self) -> None:
        return None
