"""Sending an e-mail: outbox row first, then a job hands it to the mailbox's SMTP server.

The message is built, stored (interaction ``queued``, the exact bytes, the
outbox row) and committed before anything is sent, so it is on the card at
once and survives a crash. The job moves the row ``queued → sending →
sent`` (or ``failed`` with the server's reason); a row already past
``queued`` is never sent again, so a job run twice sends once. A row left in
``sending`` by a crash is not retried blindly (the server may have taken it):
it stays visible for a person to decide.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import (
    Channel,
    ChannelError,
    ChannelUnavailable,
    Mailer,
    OutboundEmail,
    SendRejected,
)
from commhub.domain.interactions import Channel as Medium
from commhub.domain.interactions import Direction, NewInteraction, Status
from commhub.domain.mail import MailAddress, attachment_item, display, html_to_text, parse_mail
from commhub.domain.mail_compose import (
    Attachment,
    ComposedMail,
    Draft,
    DraftError,
    Recipient,
    compose,
    reply_subject,
)
from commhub.services.errors import InvalidInput, NotFound
from commhub.services.identify import Verdict, identify
from commhub.store import emails as store
from commhub.store import interactions as interaction_store
from commhub.store import suppressions
from commhub.store.schema import Email, Interaction, Outbox, utcnow

log = logging.getLogger(__name__)

SEND_JOB: Final = "send_outbox"


@dataclass(frozen=True, slots=True)
class EmailRequest:
    """What a person asks to send; ``reply_to_id`` is the interaction answered."""

    to: tuple[Recipient, ...]
    subject: str | None
    text: str
    html: str | None = None
    cc: tuple[Recipient, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    contact_id: int | None = None
    reply_to_id: int | None = None
    key: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


async def queue_email(
    session: AsyncSession,
    mailer: Mailer,
    request: EmailRequest,
    *,
    user_id: int | None,
    region: str,
) -> tuple[Outbox, bool]:
    """Build and store the message and its outbox row; commits. Returns (row, created).

    A ``key`` already used returns the row it made the first time. Raises
    :class:`InvalidInput` naming the field for what cannot be sent as written
    (a bad address, a line break in the subject, an address on the
    suppression list, too large).
    """
    try:
        return await _queue(session, mailer, request, user_id=user_id, region=region)
    except DraftError as exc:
        await session.rollback()
        raise InvalidInput(exc.field, exc.reason) from None


async def _queue(
    session: AsyncSession,
    mailer: Mailer,
    request: EmailRequest,
    *,
    user_id: int | None,
    region: str,
) -> tuple[Outbox, bool]:
    if request.key:
        existing = await session.scalar(select(Outbox).where(Outbox.key == request.key))
        if existing is not None:
            return existing, False
    parent = await _parent(session, request.reply_to_id)
    draft = _draft(mailer, request, parent)
    composed = compose(draft, now=utcnow(), max_bytes=mailer.max_message_bytes)
    await _check_suppressed(session, composed.recipients)
    contact_id = request.contact_id
    if contact_id is None and parent is not None:
        contact_id = parent[1].contact_id
    if contact_id is None:
        found = await identify(session, composed.recipients[0], region=region)
        if found.verdict is Verdict.MATCH:
            contact_id = found.contact_ids[0]
    interaction, _ = await interaction_store.record(
        session,
        NewInteraction(
            channel=Medium.EMAIL,
            direction=Direction.OUTBOUND,
            status=Status.QUEUED,
            external_id=composed.message_id,
            occurred_at=utcnow(),
            from_address=composed.sender,
            to_address=composed.recipients[0],
            contact_id=contact_id,
            operator_id=user_id,
            subject=draft.subject,
            summary=" ".join((draft.text or html_to_text(draft.html or "")).split())[:500],
            extra={"kind": "message", **request.extra},
        ),
    )
    email = _email_row(mailer, draft, composed, interaction.id, parent)
    session.add(email)
    await session.flush()
    if email.thread_id is None:
        email.thread_id = email.id
    outbox = Outbox(
        key=request.key or f"email:{interaction.id}",
        channel=Medium.EMAIL.value,
        source=mailer.name,
        interaction_id=interaction.id,
        contact_id=contact_id,
        user_id=user_id,
        sender=composed.sender,
        recipients={"to": list(composed.recipients)},
        state="queued",
    )
    session.add(outbox)
    await session.commit()
    return outbox, True


async def _parent(
    session: AsyncSession, interaction_id: int | None
) -> tuple[Email, Interaction] | None:
    if interaction_id is None:
        return None
    interaction = await session.get(Interaction, interaction_id)
    email = await store.for_interaction(session, interaction_id)
    if interaction is None or email is None:
        raise NotFound("e-mail interaction", interaction_id)
    return email, interaction


def _draft(
    mailer: Mailer, request: EmailRequest, parent: tuple[Email, Interaction] | None
) -> Draft:
    subject = request.subject
    in_reply_to = ""
    references: tuple[str, ...] = ()
    if parent is not None:
        email, interaction = parent
        if not email.message_id:
            raise DraftError("reply_to_id", "the message answered has no Message-ID")
        in_reply_to = email.message_id
        references = tuple(email.references.split())
        if subject is None:
            subject = reply_subject(interaction.subject)
    return Draft(
        sender=Recipient(mailer.address, mailer.display_name),
        to=request.to,
        cc=request.cc,
        subject=subject or "",
        text=request.text,
        html=request.html,
        attachments=request.attachments,
        in_reply_to=in_reply_to,
        references=references,
    )


async def _check_suppressed(session: AsyncSession, recipients: Sequence[str]) -> None:
    listed = await suppressions.suppressed(session, Medium.EMAIL, recipients)
    for address, entry in listed.items():
        raise DraftError(
            "to", f"{address} is on the e-mail suppression list ({entry.reason or entry.source})"
        )


def _email_row(
    mailer: Mailer,
    draft: Draft,
    composed: ComposedMail,
    interaction_id: int,
    parent: tuple[Email, Interaction] | None,
) -> Email:
    def shown(recipients: Sequence[Recipient]) -> list[str]:
        return [display(MailAddress(r.address, r.name)) for r in recipients]

    references = list(draft.references)
    if draft.in_reply_to and draft.in_reply_to not in references:
        references.append(draft.in_reply_to)
    return Email(
        interaction_id=interaction_id,
        mailbox=mailer.name,
        message_id=composed.message_id,
        in_reply_to=draft.in_reply_to,
        references=" ".join(references),
        thread_id=parent[0].thread_id if parent is not None else None,
        kind="message",
        sender=display(MailAddress(mailer.address, mailer.display_name)),
        recipients={"to": shown(draft.to), "cc": shown(draft.cc), "reply_to": []},
        text=draft.text,
        html=draft.html,
        attachments={"items": [attachment_item(a) for a in parse_mail(composed.raw).attachments]},
        raw=composed.raw,
        size=len(composed.raw),
    )


async def send_outbox(ctx: dict[str, Any], outbox_id: int) -> str:
    """The job: send one outbox row through its mailbox, record what the server said."""
    sessions = ctx["sessions"]
    channels: Mapping[str, Channel] = ctx.get("channels", {})
    final_try = int(ctx.get("job_try", 1)) >= int(ctx.get("max_tries", 3))
    async with sessions() as session:
        row = await session.get(Outbox, outbox_id)
        if row is None or row.state != "queued":
            return "nothing to do" if row is None else row.state
        mailer = channels.get(row.source)
        if not isinstance(mailer, Mailer):
            await _fail(session, row, f"no mailbox named {row.source!r} is configured")
            return "failed"
        email = await store.for_interaction(session, row.interaction_id)
        if email is None:
            await _fail(session, row, "the stored message is missing")
            return "failed"
        message = OutboundEmail(
            key=row.key, sender=row.sender, recipients=tuple(row.recipients["to"]), raw=email.raw
        )
        row.state = "sending"
        row.attempts += 1
        await session.commit()
        try:
            result = await mailer.send(message)
        except SendRejected as exc:
            await _fail(session, row, str(exc))
            return "failed"
        except (ChannelUnavailable, ChannelError) as exc:
            if final_try:
                await _fail(session, row, f"gave up after {row.attempts} tries: {exc}")
                return "failed"
            row.state = "queued"
            row.last_error = str(exc)
            await session.commit()
            raise
        row.state = "sent"
        row.sent_at = result.accepted_at
        row.reply = result.reply
        if result.refused:
            row.last_error = "; ".join(f"{a}: {why}" for a, why in result.refused.items())
        await store.set_status(
            session, row.interaction_id, Status.SENT.value, only_from=[Status.QUEUED.value]
        )
        await session.commit()
        return "sent"


async def _fail(session: AsyncSession, row: Outbox, reason: str) -> None:
    log.warning("e-mail %s not sent: %s", row.key, reason)
    row.state = "failed"
    row.last_error = reason
    interaction = await session.get(Interaction, row.interaction_id)
    if interaction is not None and interaction.status == Status.QUEUED.value:
        interaction.status = Status.FAILED.value
        interaction.extra = {**interaction.extra, "error": reason}
    await session.commit()


async def queued_rows(session: AsyncSession) -> list[int]:
    """Outbox rows waiting to be sent: after a restart, their jobs are queued again."""
    rows = await session.scalars(select(Outbox.id).where(Outbox.state == "queued"))
    return list(rows)
