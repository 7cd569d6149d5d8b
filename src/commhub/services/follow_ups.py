"""Follow-ups: a date by which someone promised to come back to a contact."""

from __future__ import annotations

from commhub.models import FollowUp
from commhub.services.database import Database
from commhub.services.errors import NotFound
from commhub.store import follow_ups as store


async def complete(db: Database, follow_up_id: int, user_id: int) -> FollowUp:
    """Mark done (once: a second click changes nothing)."""
    async with db.begin() as session:
        row = await store.complete(session, follow_up_id, user_id)
    if row is None:
        raise NotFound("follow-up", follow_up_id)
    return row
