"""Follow-ups: what an operator promised a contact, open until marked done."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.models import Contact, FollowUp, utcnow


async def open_for_user(
    session: AsyncSession, user_id: int, *, limit: int = 50
) -> Sequence[tuple[FollowUp, Contact]]:
    """A user's open follow-ups, the most overdue first (the partial index serves it)."""
    rows = await session.execute(
        select(FollowUp, Contact)
        .join(Contact, Contact.id == FollowUp.contact_id)
        .where(FollowUp.user_id == user_id, FollowUp.done_at.is_(None))
        .order_by(FollowUp.due_at, FollowUp.id)
        .limit(limit)
    )
    return [(follow_up, contact) for follow_up, contact in rows.all()]


async def open_for_contact(session: AsyncSession, contact_id: int) -> Sequence[FollowUp]:
    rows = await session.scalars(
        select(FollowUp)
        .where(FollowUp.contact_id == contact_id, FollowUp.done_at.is_(None))
        .order_by(FollowUp.due_at, FollowUp.id)
    )
    return rows.all()


async def add(
    session: AsyncSession,
    *,
    contact_id: int,
    user_id: int,
    due_at: datetime,
    note: str,
    created_by_id: int,
    interaction_id: int | None,
) -> FollowUp:
    row = FollowUp(
        contact_id=contact_id,
        user_id=user_id,
        due_at=due_at,
        note=note,
        created_by_id=created_by_id,
        interaction_id=interaction_id,
    )
    session.add(row)
    await session.flush()
    return row


async def complete(session: AsyncSession, follow_up_id: int, user_id: int) -> FollowUp | None:
    """Mark done (once: a second click changes nothing); ``None`` if there is no such row."""
    row = await session.get(FollowUp, follow_up_id)
    if row is not None and row.done_at is None:
        row.done_at = utcnow()
        row.done_by_id = user_id
    return row
