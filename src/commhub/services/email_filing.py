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
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import EmailArrived
from commhub.domain.email_messages import (
    EmailParseError,
    ParsedEmail,
    attachment_item,
    display,
    parse_email,
)
from commhub.domain.interactions import Direction, Medium, NewInteraction, Status
from commhub.models import Contact, Email, Interaction, utcnow
from commhub.services import unsubscribes
from commhub.services.counterparts import contact_for
from commhub.services.database import Database
from commhub.services.deal_rules import open_for_inbound
from commhub.services.filing import Filed, Outcome
from commhub.services.live import EMAIL_RECEIVED, LiveFeed
from commhub.services.mail_reports import apply_bounce, apply_complaint
from commhub.store import campaign_replies as replies
from commhub.store import emails as store
from commhub.store import interactions as interaction_store

log = logging.getLogger(__name__)

MAX_EXTERNAL_ID: Final = 255


class EmailKind(StrEnum):
    MESSAGE = "message"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    """A feedback-loop report (RFC 5965): someone marked our message as spam."""


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
        contact_id = await apply_bounce(session, parsed.bounce, key)
    elif kind is EmailKind.COMPLAINT and parsed.complaint is not None:
        contact_id = await apply_complaint(session, parsed.complaint, key, region=region)
    human = kind is EmailKind.MESSAGE and not ours
    unsubscribed, campaign_id = (
        await _to_a_campaign(session, parsed, parents, key) if human else (None, None)
    )
    if unsubscribed is not None:
        contact_id = unsubscribed.contact_id  # the token says whose, whoever sent it
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
    new = _interaction(arrived, parsed, key, kind, ours, contact_id, candidates)
    extra = {"unsubscribed": unsubscribed.campaign_id} if unsubscribed is not None else {}
    interaction, created = await interaction_store.record(
        session, replace(new, campaign_id=campaign_id, extra={**new.extra, **extra})
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
    if human and unsubscribed is None:
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


async def _to_a_campaign(
    session: AsyncSession, parsed: ParsedEmail, parents: Sequence[Email], key: str
) -> tuple[unsubscribes.Unsubscribed | None, int | None]:
    """A person's mail about a campaign: an unsubscribe by e-mail (withdrawn here, in this
    transaction), else the campaign whose message it answers (nearest in the thread first)."""
    how = f"an e-mail ({key})"
    unsubscribed = await unsubscribes.unsubscribe_by_mail(session, parsed.subject, how=how)
    if unsubscribed is not None:
        return unsubscribed, None
    return None, await replies.campaign_of(session, [p.interaction_id for p in parents])


async def _contact_of(session: AsyncSession, parent: Email) -> int | None:
    return await session.scalar(
        select(Interaction.contact_id).where(Interaction.id == parent.interaction_id)
    )


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
    if parsed.complaint is not None:
        extra["feedback_type"] = parsed.complaint.feedback_type
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
        "campaign_id": interaction.campaign_id,
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
