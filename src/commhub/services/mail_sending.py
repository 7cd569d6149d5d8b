"""Sending an e-mail: outbox row first, then a job hands it to the mailbox's SMTP server.

The message is built, stored (interaction ``queued``, the exact bytes, the
outbox row) and committed before anything is sent, so it is on the card at
once and survives a crash. The job *claims* the row (``store/outbox.py``:
``sending``, its holder's name, a lease renewed while the SMTP dialogue
runs), so a job run twice, or by two workers, sends once; the row ends
``sent`` (or ``failed`` with the server's reason, or ``queued`` again for a
temporary failure). A claim whose holder died mid-dialogue lapses into
``uncertain``: the server may have the message, so it is neither retried
nor failed by itself but shown to a person to resend or dismiss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import (
    Channel,
    ChannelError,
    ChannelUnavailable,
    HandOverUnknown,
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
from commhub.jobs.queue import JobQueue
from commhub.models import Email, Interaction, Outbox, utcnow
from commhub.services.database import Database
from commhub.services.errors import InvalidInput, NotFound
from commhub.services.identify import Verdict, identify
from commhub.services.outbox import hold_in_doubt, reused_key
from commhub.store import emails as store
from commhub.store import interactions as interaction_store
from commhub.store import outbox as claims
from commhub.store import suppressions
from commhub.store.engine import SessionFactory

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
    fingerprint: str = ""
    """A digest of what the client asked (``store.outbox.request_hash``): a ``key`` used
    again for something else is refused, as payment APIs do."""
    extra: Mapping[str, Any] = field(default_factory=dict)


async def send(
    db: Database,
    jobs: JobQueue,
    mailer: Mailer,
    request: EmailRequest,
    *,
    asked: Mapping[str, Any] | None = None,
    user_id: int | None,
    region: str,
) -> tuple[Outbox, bool]:
    """Queue the message (:func:`queue_email`) and hand out the job that sends it.

    ``asked`` is what the client sent with its idempotency key: a key used
    again with something else asked is refused. Returns (row, created); a
    key already used hands out no second job.
    """
    if request.key and asked is not None:
        request = replace(request, fingerprint=claims.request_hash(asked))
    async with db() as session:
        row, created = await queue_email(session, mailer, request, user_id=user_id, region=region)
    if created:
        await jobs.enqueue(SEND_JOB, row.id, job_id=f"outbox:{row.id}")
    return row, created


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
        existing = await reused_key(session, request.key, request.fingerprint)
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
        request_hash=request.fingerprint or None,
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
    """The job: claim one outbox row, send it through its mailbox, record what the server said."""
    sessions: SessionFactory = ctx["sessions"]
    channels: Mapping[str, Channel] = ctx.get("channels", {})
    holder: str = ctx.setdefault("outbox_holder", claims.holder_name("email"))
    settings = ctx.get("settings")
    lease_s = float(getattr(settings, "outbox_lease_s", claims.LEASE_S))
    final_try = int(ctx.get("job_try", 1)) >= int(ctx.get("max_tries", 3))
    async with sessions() as session:
        taken = await claims.claim(session, holder=holder, ids=[outbox_id], lease_s=lease_s)
        row = await session.get(Outbox, outbox_id)
        if row is None or outbox_id not in taken:
            return "nothing to do" if row is None else row.state
        mailer = channels.get(row.source)
        if not isinstance(mailer, Mailer):
            await _fail(session, row, holder, f"no mailbox named {row.source!r} is configured")
            return "failed"
        email = await store.for_interaction(session, row.interaction_id)
        if email is None:
            await _fail(session, row, holder, "the stored message is missing")
            return "failed"
        message = OutboundEmail(
            key=row.key, sender=row.sender, recipients=tuple(row.recipients["to"]), raw=email.raw
        )
        attempts = row.attempts
        await session.commit()
    renewing = asyncio.create_task(_renew(sessions, holder, outbox_id, lease_s))
    try:
        result = await mailer.send(message)
    except SendRejected as exc:
        return await _fail_by_id(sessions, outbox_id, holder, str(exc))
    except HandOverUnknown as exc:
        await hold_in_doubt(sessions, holder=holder, outbox_id=outbox_id, reason=str(exc))
        return "uncertain"
    except (ChannelUnavailable, ChannelError) as exc:
        if final_try:
            return await _fail_by_id(
                sessions, outbox_id, holder, f"gave up after {attempts} tries: {exc}"
            )
        async with sessions() as session:
            await claims.release(
                session, holder=holder, outbox_id=outbox_id, reason=str(exc), retry_at=utcnow()
            )
            await session.commit()
        raise
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
    async with sessions() as session:
        refused = "; ".join(f"{a}: {why}" for a, why in result.refused.items())
        done = await session.execute(
            update(Outbox)
            .where(claims.held_by(holder, outbox_id))
            .values(
                state=claims.SENT,
                sent_at=result.accepted_at,
                reply=result.reply,
                last_error=refused or None,
                lease_until=None,
            )
            .returning(Outbox.interaction_id)
        )
        interaction_id = done.scalar()
        if interaction_id is None:
            await session.rollback()
            return "settled meanwhile"
        await store.set_status(
            session,
            interaction_id,
            Status.SENT.value,
            only_from=[Status.QUEUED.value, Status.UNCERTAIN.value],
        )
        await session.commit()
    return "sent"


async def _renew(sessions: SessionFactory, holder: str, outbox_id: int, lease_s: float) -> None:
    """Keep the claim alive while the SMTP dialogue runs (a large message, a slow server)."""
    while True:
        await asyncio.sleep(lease_s / 3)
        with contextlib.suppress(OSError, TimeoutError):
            async with sessions() as session:
                await claims.renew(session, holder=holder, ids=[outbox_id], lease_s=lease_s)


async def _fail_by_id(sessions: SessionFactory, outbox_id: int, holder: str, reason: str) -> str:
    async with sessions() as session:
        row = await session.get(Outbox, outbox_id)
        if row is not None:
            await _fail(session, row, holder, reason)
    return "failed"


async def _fail(session: AsyncSession, row: Outbox, holder: str, reason: str) -> None:
    if row.claimed_by != holder or row.state not in (claims.SENDING, claims.UNCERTAIN):
        await session.rollback()
        return  # settled meanwhile by someone who knew
    log.warning("e-mail %s not sent: %s", row.key, reason)
    row.state = claims.FAILED
    row.last_error = reason
    row.lease_until = None
    interaction = await session.get(Interaction, row.interaction_id)
    if interaction is not None and interaction.status in (
        Status.QUEUED.value,
        Status.UNCERTAIN.value,
    ):
        interaction.status = Status.FAILED.value
        interaction.extra = {**interaction.extra, "error": reason}
    await session.commit()
