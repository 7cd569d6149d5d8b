"""E-mail queries: messages by Message-ID, threads, folder cursors, failures."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.models import (
    Email,
    EmailCursorRow,
    Interaction,
    MailFailure,
    utcnow,
)
from commhub.store.dialect import upsert_insert


async def by_message_ids(session: AsyncSession, message_ids: Sequence[str]) -> list[Email]:
    """Stored messages with any of these Message-IDs (one per id, the first stored)."""
    if not message_ids:
        return []
    rows = await session.scalars(
        select(Email).where(Email.message_id.in_(list(message_ids))).order_by(Email.id)
    )
    first: dict[str, Email] = {}
    for row in rows:
        first.setdefault(row.message_id, row)
    return [first[m] for m in message_ids if m in first]


async def for_interaction(session: AsyncSession, interaction_id: int) -> Email | None:
    return await session.scalar(select(Email).where(Email.interaction_id == interaction_id))


async def thread(session: AsyncSession, thread_id: int) -> Sequence[tuple[Email, Interaction]]:
    """Every message of a thread, oldest first."""
    rows = await session.execute(
        select(Email, Interaction)
        .join(Interaction, Interaction.id == Email.interaction_id)
        .where(Email.thread_id == thread_id)
        .order_by(Interaction.occurred_at, Email.id)
    )
    return [(email, interaction) for email, interaction in rows]


async def unmatched(
    session: AsyncSession, *, after_id: int | None, limit: int
) -> Sequence[tuple[Email, Interaction]]:
    """Mail from senders on no card (or on several), waiting for a person, newest first."""
    query = (
        select(Email, Interaction)
        .join(Interaction, Interaction.id == Email.interaction_id)
        .where(Email.needs_assignment.is_(True))
    )
    if after_id is not None:
        query = query.where(Email.id < after_id)
    rows = await session.execute(query.order_by(Email.id.desc()).limit(limit))
    return [(email, interaction) for email, interaction in rows]


async def cursor(session: AsyncSession, source: str, folder: str) -> EmailCursorRow | None:
    return await session.get(EmailCursorRow, (source, folder))


async def advance_cursor(
    session: AsyncSession, source: str, folder: str, *, uidvalidity: int, uid: int
) -> None:
    """Move a folder's cursor to ``uid``; a new UIDVALIDITY starts it afresh, never backwards.

    One upsert, not a read and a write: it runs once for every message filed.
    """
    statement = upsert_insert(session, EmailCursorRow).values(
        source=source, folder=folder, uidvalidity=uidvalidity, last_uid=uid, updated_at=utcnow()
    )
    current = EmailCursorRow.__table__.c
    new = statement.excluded
    moved = or_(current.uidvalidity != new.uidvalidity, new.last_uid > current.last_uid)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["source", "folder"],
            set_={
                "last_uid": case((moved, new.last_uid), else_=current.last_uid),
                "uidvalidity": new.uidvalidity,
                "updated_at": new.updated_at,
            },
        )
    )


async def keep_failure(
    session: AsyncSession,
    *,
    source: str,
    folder: str,
    uidvalidity: int,
    uid: int,
    raw: bytes,
    error: str,
) -> None:
    """Keep a message that could not be filed; the same one found again is kept once."""
    await session.execute(
        upsert_insert(session, MailFailure)
        .values(
            source=source,
            folder=folder,
            uidvalidity=uidvalidity,
            uid=uid,
            raw=raw,
            size=len(raw),
            error=error,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["source", "folder", "uidvalidity", "uid"])
    )


async def failures(
    session: AsyncSession, *, after_id: int | None, limit: int, include_resolved: bool = False
) -> Sequence[MailFailure]:
    query = select(MailFailure)
    if not include_resolved:
        query = query.where(MailFailure.resolved_at.is_(None))
    if after_id is not None:
        query = query.where(MailFailure.id < after_id)
    return (await session.scalars(query.order_by(MailFailure.id.desc()).limit(limit))).all()


async def set_status(
    session: AsyncSession, interaction_id: int, status: str, *, only_from: Iterable[str]
) -> bool:
    """Move an interaction's status forward; ``only_from`` lists the states it may leave."""
    result = await session.execute(
        update(Interaction)
        .where(Interaction.id == interaction_id, Interaction.status.in_(list(only_from)))
        .values(status=status)
    )
    return bool(getattr(result, "rowcount", 0))


def when(value: datetime | None) -> datetime:
    return value if value is not None else utcnow()
