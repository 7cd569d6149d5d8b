"""Follow-ups: a date by which someone promised to come back to a contact."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from commhub.models import Contact, FollowUp
from commhub.services.database import Database
from commhub.services.errors import NotFound
from commhub.store import follow_ups as store


async def open_for_user(db: Database, user_id: int) -> Sequence[tuple[FollowUp, Contact]]:
    """A user's open follow-ups, the most overdue first."""
    async with db() as session:
        return await store.open_for_user(session, user_id)


async def add(
    db: Database,
    *,
    contact_id: int,
    user_id: int,
    due_at: datetime,
    note: str,
    created_by_id: int,
    interaction_id: int | None = None,
) -> FollowUp:
    async with db.begin() as session:
        return await store.add(
            session,
            contact_id=contact_id,
            user_id=user_id,
            due_at=due_at,
            note=note,
            created_by_id=created_by_id,
            interaction_id=interaction_id,
        )


async def complete(db: Database, follow_up_id: int, user_id: int) -> FollowUp:
    """Mark done (once: a second click changes nothing)."""
    async with db.begin() as session:
        row = await store.complete(session, follow_up_id, user_id)
    if row is None:
        raise NotFound("follow-up", follow_up_id)
    return row
