"""Interaction queries: record once, read the card timeline, filter the log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy import Select, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.interactions import InteractionFilter, NewInteraction
from commhub.domain.pagination import Cursor
from commhub.models import Interaction
from commhub.store.dialect import contains_text, upsert_insert


async def record(session: AsyncSession, new: NewInteraction) -> tuple[Interaction, bool]:
    """Insert ``new`` unless (channel, external_id) is already there.

    Returns the row and whether it was created. Uses the database's own
    ``ON CONFLICT DO NOTHING`` so two processes racing on one event still
    write one row; a new row comes back from its own ``RETURNING``, so only
    a conflict costs a second query. The caller commits.
    """
    values = asdict(new)
    values["channel"] = new.channel.value
    values["direction"] = new.direction.value
    values["status"] = new.status.value
    statement = (
        upsert_insert(session, Interaction)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(Interaction)
    )
    inserted = await session.scalar(statement)
    if inserted is not None:
        return inserted, True
    row = await session.scalar(
        select(Interaction).where(
            Interaction.channel == new.channel.value,
            Interaction.external_id == new.external_id,
        )
    )
    assert row is not None, "row vanished between insert and select"
    return row, False


async def timeline(
    session: AsyncSession, contact_id: int, *, after: Cursor | None, limit: int
) -> Sequence[Interaction]:
    """One page of a contact's card, newest first, served by ``ix_interactions_card``."""
    query = select(Interaction).where(Interaction.contact_id == contact_id)
    return await _page(session, query, after=after, limit=limit)


async def unmatched_from(
    session: AsyncSession, address: str, *, limit: int
) -> Sequence[Interaction]:
    """The latest interactions with ``address`` that are on no card (an unknown caller's past)."""
    query = select(Interaction).where(
        Interaction.contact_id.is_(None),
        or_(Interaction.from_address == address, Interaction.to_address == address),
    )
    return await _page(session, query, after=None, limit=limit)


async def search(
    session: AsyncSession, filters: InteractionFilter, *, after: Cursor | None, limit: int
) -> Sequence[Interaction]:
    """One page of the interaction log with ``filters`` applied, newest first."""
    return await _page(session, _filtered(filters), after=after, limit=limit)


async def more_than(session: AsyncSession, filters: InteractionFilter, count: int) -> bool:
    """Whether more than ``count`` interactions match: is an export cut short?"""
    query = _filtered(filters).with_only_columns(Interaction.id).offset(count).limit(1)
    return await session.scalar(query) is not None


def _filtered(filters: InteractionFilter) -> Select[Interaction]:
    query = select(Interaction)
    for column, value in (
        (Interaction.channel, filters.channel),
        (Interaction.direction, filters.direction),
        (Interaction.status, filters.status),
        (Interaction.operator_id, filters.operator_id),
        (Interaction.contact_id, filters.contact_id),
        (Interaction.queue, filters.queue),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.statuses is not None:
        query = query.where(Interaction.status.in_(filters.statuses))
    if filters.since is not None:
        query = query.where(Interaction.occurred_at >= filters.since)
    if filters.until is not None:
        query = query.where(Interaction.occurred_at < filters.until)
    if filters.text:
        query = query.where(contains_text([Interaction.subject, Interaction.summary], filters.text))
    if filters.address:
        query = query.where(
            or_(
                Interaction.from_address == filters.address,
                Interaction.to_address == filters.address,
            )
        )
    return query


async def _page(
    session: AsyncSession,
    query: Select[Interaction],
    *,
    after: Cursor | None,
    limit: int,
) -> Sequence[Interaction]:
    if after is not None:
        query = query.where(
            tuple_(Interaction.occurred_at, Interaction.id) < tuple_(after.occurred_at, after.id)
        )
    query = query.order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit)
    return (await session.scalars(query)).all()


def cursor_after(rows: Sequence[Interaction], limit: int) -> Cursor | None:
    """The cursor for the next page, or ``None`` when this page was the last."""
    if len(rows) < limit or not rows:
        return None
    last = rows[-1]
    return Cursor(occurred_at=last.occurred_at, id=last.id)
