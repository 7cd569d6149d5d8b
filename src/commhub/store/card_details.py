"""What the card's timeline shows beyond the interaction row: SMS texts and e-mail bodies.

Read for one page of the timeline at a time, by interaction id, and only the
columns shown (never an e-mail's raw bytes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.models import Email, Interaction, SmsMessage


@dataclass(frozen=True, slots=True)
class SmsDetail:
    text: str
    encoding: str
    segments: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class EmailDetail:
    id: int
    sender: str
    text: str
    has_html: bool
    kind: str
    thread_id: int | None
    thread_size: int
    attachments: int


async def sms_details(session: AsyncSession, ids: Iterable[int]) -> dict[int, SmsDetail]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(
        select(
            SmsMessage.interaction_id,
            SmsMessage.text,
            SmsMessage.encoding,
            SmsMessage.segments,
            SmsMessage.reason,
        ).where(SmsMessage.interaction_id.in_(wanted))
    )
    return {i: SmsDetail(text, enc, seg, reason) for i, text, enc, seg, reason in rows.all()}


async def email_details(session: AsyncSession, ids: Iterable[int]) -> dict[int, EmailDetail]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = (
        await session.execute(
            select(
                Email.interaction_id,
                Email.id,
                Email.sender,
                Email.text,
                Email.html.is_not(None),
                Email.kind,
                Email.thread_id,
                Email.attachments,
            ).where(Email.interaction_id.in_(wanted))
        )
    ).all()
    threads = {row[6] for row in rows if row[6] is not None}
    sizes: dict[int, int] = {}
    if threads:
        counted = await session.execute(
            select(Email.thread_id, func.count())
            .where(Email.thread_id.in_(threads))
            .group_by(Email.thread_id)
        )
        sizes = {thread: int(count) for thread, count in counted.all() if thread is not None}
    return {
        interaction_id: EmailDetail(
            id=email_id,
            sender=sender,
            text=text,
            has_html=bool(has_html),
            kind=kind,
            thread_id=thread_id,
            thread_size=sizes.get(thread_id, 1) if thread_id is not None else 1,
            attachments=len((attachments or {}).get("items", [])),
        )
        for interaction_id, email_id, sender, text, has_html, kind, thread_id, attachments in rows
    }


async def email_html(session: AsyncSession, interaction_id: int) -> str | None:
    """The stored HTML body of an e-mail interaction, if it had one."""
    return await session.scalar(select(Email.html).where(Email.interaction_id == interaction_id))


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """One message of an e-mail thread as the thread page shows it."""

    interaction_id: int
    contact_id: int | None
    direction: str
    status: str
    occurred_at: datetime
    subject: str
    from_address: str
    to_address: str
    sender: str
    recipients: dict[str, Any]
    text: str
    has_html: bool
    kind: str
    attachments: list[dict[str, Any]]


async def thread(session: AsyncSession, thread_id: int) -> list[ThreadMessage]:
    """Every message of a thread here, oldest first (never the raw bytes)."""
    rows = await session.execute(
        select(
            Interaction.id,
            Interaction.contact_id,
            Interaction.direction,
            Interaction.status,
            Interaction.occurred_at,
            Interaction.subject,
            Interaction.from_address,
            Interaction.to_address,
            Email.sender,
            Email.recipients,
            Email.text,
            Email.html.is_not(None),
            Email.kind,
            Email.attachments,
        )
        .join(Email, Email.interaction_id == Interaction.id)
        .where(Email.thread_id == thread_id)
        .order_by(Interaction.occurred_at, Interaction.id)
    )
    return [
        ThreadMessage(
            interaction_id=row[0],
            contact_id=row[1],
            direction=row[2],
            status=row[3],
            occurred_at=row[4],
            subject=row[5],
            from_address=row[6],
            to_address=row[7],
            sender=row[8],
            recipients=dict(row[9] or {}),
            text=row[10],
            has_html=bool(row[11]),
            kind=row[12],
            attachments=list((row[13] or {}).get("items", [])),
        )
        for row in rows.all()
    ]
