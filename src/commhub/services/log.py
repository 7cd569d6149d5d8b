"""Reading the interaction log: a filtered page, the API's listing, and the export's chunks.

Each read opens its own short session. The export reads along the log's
keyset order one chunk per session, so a large download neither holds a
database connection while a slow client reads nor loads every row at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from commhub.domain.interactions import InteractionFilter
from commhub.domain.pagination import Cursor
from commhub.models import Interaction, User
from commhub.services.database import Database
from commhub.store import contacts as contact_store
from commhub.store import interactions as store
from commhub.store import users as user_store


@dataclass(frozen=True, slots=True)
class LogSlice:
    """One page of the log and the cursor of the next (``None`` on the last page)."""

    rows: Sequence[Interaction]
    next_cursor: Cursor | None


@dataclass(frozen=True, slots=True)
class LogPage:
    """What the log page shows: its rows and the names its columns and filters need.

    ``capped`` says the filters match more rows than one export holds.
    """

    rows: Sequence[Interaction]
    next_cursor: Cursor | None
    contact_names: dict[int, str]
    operators: dict[int, str]
    capped: bool


@dataclass(frozen=True, slots=True)
class LogChunk:
    """Some rows of an export, with the contact and operator names they show."""

    rows: Sequence[Interaction]
    contact_names: dict[int, str]
    operators: dict[int, str]


async def search(
    db: Database, filters: InteractionFilter, *, after: Cursor | None, limit: int
) -> LogSlice:
    """One page of interactions matching ``filters``, newest first."""
    async with db() as session:
        rows = await store.search(session, filters, after=after, limit=limit)
    return LogSlice(rows, store.cursor_after(rows, limit))


async def log_page(
    db: Database,
    filters: InteractionFilter | None,
    *,
    after: Cursor | None,
    limit: int,
    named_contact: int | None,
    export_limit: int | None,
) -> LogPage:
    """The log page for ``filters`` (``None`` when they could not be read: no rows).

    ``named_contact`` is the contact the filter form names, whose name the
    form shows even when no row is theirs. With ``export_limit`` (the viewer
    may export) a full first page also tells whether an export would be cut short.
    """
    rows: Sequence[Interaction] = ()
    following: Cursor | None = None
    capped = False
    async with db() as session:
        operators = operator_names(await user_store.all_users(session))
        if filters is not None:
            rows = await store.search(session, filters, after=after, limit=limit)
            following = store.cursor_after(rows, limit)
            # Only a full first page can hide more rows than an export holds.
            capped = (
                export_limit is not None
                and after is None
                and following is not None
                and await store.more_than(session, filters, export_limit)
            )
        names = await contact_store.names_of(
            session, [row.contact_id for row in rows] + [named_contact]
        )
    return LogPage(rows, following, names, operators, capped)


async def export_chunks(
    db: Database, filters: InteractionFilter, *, limit: int, chunk_rows: int
) -> AsyncIterator[LogChunk]:
    """The rows matching ``filters``, newest first, ``chunk_rows`` at a time, at most ``limit``."""
    async with db() as session:
        operators = operator_names(await user_store.all_users(session))
    after = None
    left = limit
    while left > 0:
        size = min(chunk_rows, left)
        async with db() as session:
            found = await store.search(session, filters, after=after, limit=size)
            names = await contact_store.names_of(session, [row.contact_id for row in found])
        if found:
            yield LogChunk(found, names, operators)
        after = store.cursor_after(found, size)
        if after is None:
            return
        left -= len(found)


def operator_names(people: Sequence[User]) -> dict[int, str]:
    """Each user's name as the log shows it in its operator column."""
    return {person.id: person.shown_name for person in people}
