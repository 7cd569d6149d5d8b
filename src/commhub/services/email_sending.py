"""Sending an e-mail: the message and its outbox row first; the mailbox's dispatcher sends it.

The message is built, stored (interaction ``queued``, the exact bytes, the
outbox row) and committed before anything is sent, so it is on the card at
once and survives a crash. The mailbox's dispatcher (``services/dispatch.py``)
claims the row, hands it to the SMTP server and writes the answer: ``sent``,
``failed`` with the server's reason, ``queued`` again for a temporary failure,
or ``uncertain`` when a crash or a cut connection left it unknown whether the
server has it (shown to a person to resend or dismiss, never sent again by itself).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import (
    Mailbox,
)
from commhub.domain.email_compose import (
    Attachment,
    ComposedEmail,
    Draft,
    DraftError,
    Recipient,
    compose,
    reply_subject,
)
from commhub.domain.email_messages import (
    EmailAddress,
    attachment_item,
    display,
    html_to_text,
    parse_email,
)
from commhub.domain.interactions import Direction, Medium, NewInteraction, Status
from commhub.models import Email, Interaction, Outbox, utcnow
from commhub.services.database import Database
from commhub.services.errors import InvalidInput, NotFound
from commhub.services.identify import Verdict, identify
from commhub.services.outbox import reused_key
from commhub.store import emails as store
from commhub.store import interactions as interaction_store
from commhub.store import outbox as claims
from commhub.store import suppressions

log = logging.getLogger(__name__)


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
    mailer: Mailbox,
    request: EmailRequest,
    *,
    asked: Mapping[str, Any] | None = None,
    user_id: int | None,
    region: str,
) -> tuple[Outbox, bool]:
    """Queue the message (:func:`queue_email`) for the mailbox's dispatcher.

    ``asked`` is what the client sent with its idempotency key: a key used
    again with something else asked is refused. Returns (row, created); a
    key already used queues nothing new.
    """
    if request.key and asked is not None:
        request = replace(request, fingerprint=claims.request_hash(asked))
    async with db() as session:
        return await queue_email(session, mailer, request, user_id=user_id, region=region)


async def queue_email(
    session: AsyncSession,
    mailer: Mailbox,
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
    mailer: Mailbox,
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
    mailer: Mailbox, request: EmailRequest, parent: tuple[Email, Interaction] | None
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
    mailer: Mailbox,
    draft: Draft,
    composed: ComposedEmail,
    interaction_id: int,
    parent: tuple[Email, Interaction] | None,
) -> Email:
    def shown(recipients: Sequence[Recipient]) -> list[str]:
        return [display(EmailAddress(r.address, r.name)) for r in recipients]

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
        sender=display(EmailAddress(mailer.address, mailer.display_name)),
        recipients={"to": shown(draft.to), "cc": shown(draft.cc), "reply_to": []},
        text=draft.text,
        html=draft.html,
        attachments={"items": [attachment_item(a) for a in parse_email(composed.raw).attachments]},
        raw=composed.raw,
        size=len(composed.raw),
    )
