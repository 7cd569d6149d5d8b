"""The call log as people read and tend it: calls in progress, missed calls and their
dismissal, and each PBX's calls in progress for the channels view."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from commhub.domain.pagination import Cursor
from commhub.models import Interaction, MissedCall, User
from commhub.services.database import Database
from commhub.services.errors import NotFound
from commhub.store import calls as store
from commhub.store import contacts as contact_store
from commhub.store import users as user_store


async def live_calls(db: Database) -> Sequence[Interaction]:
    """Calls not yet ended, newest first."""
    async with db() as session:
        return await store.live_calls(session)


@dataclass(frozen=True, slots=True)
class LiveCalls:
    """The calls in progress, with everyone who could be on them and the cards' names."""

    calls: Sequence[Interaction]
    users: Sequence[User]
    names: dict[int, str]


async def live_view(db: Database) -> LiveCalls:
    """What the live view draws: calls in progress, users (for extensions), contact names."""
    async with db() as session:
        rows = await store.live_calls(session)
        users = await user_store.all_users(session)
        names = await contact_store.names_of(session, [row.contact_id for row in rows])
    return LiveCalls(rows, users, names)


async def open_call_counts(db: Database, pbxs: Iterable[str]) -> dict[str, int]:
    """How many calls of each PBX the log shows in progress (as :func:`live_calls` lists)."""
    async with db() as session:
        return await store.open_call_counts(session, pbxs)


async def missed_page(
    db: Database,
    *,
    state: str | None,
    operator_id: int | None,
    after: Cursor | None,
    limit: int,
) -> Sequence[tuple[MissedCall, Interaction]]:
    """Missed calls with their call rows, newest first."""
    async with db() as session:
        return await store.missed_page(
            session, state=state, operator_id=operator_id, after=after, limit=limit
        )


async def dismiss_missed(
    db: Database, missed_id: int, user_id: int
) -> tuple[MissedCall, Interaction]:
    """Take a missed call off the open list without a call back (once; again changes nothing)."""
    async with db.begin() as session:
        missed = await store.dismiss_missed(session, missed_id, user_id)
        if missed is None:
            raise NotFound("missed call", missed_id)
        call = await session.get(Interaction, missed.interaction_id)
    if call is None:
        raise NotFound("missed call", missed_id)
    return missed, call
