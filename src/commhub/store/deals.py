"""Deals: lookups, the filtered list, the board's columns and the stage history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, UnaryExpression, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.deals import StageKind
from commhub.domain.money import Money, totals
from commhub.models import Contact, Deal, Stage, StageChange, StageReach
from commhub.store.dialect import contains_text

SORTS: Final = {
    "updated": (Deal.updated_at,),
    "created": (Deal.created_at,),
    "amount": (Deal.currency, Deal.amount),
    "title": (Deal.title,),
    "expected_close": (Deal.expected_close_on,),
    "next_step_due": (Deal.next_step_due_on,),
    "stage_entered": (Deal.stage_entered_at,),
}
"""What the list may be sorted by (ties broken by id)."""

OUTCOMES: Final = ("reached", "moved_on", "won")


@dataclass(frozen=True, slots=True)
class Reached:
    """Deals that reached a stage in a period (the funnel's drill-down), optionally only
    those that went on (``moved_on``) or were won."""

    stage_id: int
    since: datetime
    until: datetime
    outcome: str = "reached"


@dataclass(frozen=True, slots=True)
class DealFilter:
    pipeline_id: int | None = None
    stage_id: int | None = None
    owner_id: int | None = None
    unowned: bool = False
    contact_id: int | None = None
    company_id: int | None = None
    source: str | None = None
    state: str | None = None
    """``open``, ``won``, ``lost`` or ``None`` for all."""
    text: str | None = None
    overdue_on: date | None = None
    """Only deals whose next step was due before this day (the viewer's today)."""
    visible_to: int | None = None
    """Only deals this operator may see: theirs, or of contacts they own."""
    reached: Reached | None = None
    created: tuple[datetime, datetime] | None = None
    """Only deals opened in ``[since, until)``."""
    closed: tuple[datetime, datetime] | None = None
    """Only deals closed (won or lost) in ``[since, until)``."""


def visible_clause(user_id: int) -> ColumnElement[bool]:
    """A deal an operator may see and edit: their own, or one with a contact they own."""
    owned_contacts = select(Contact.id).where(Contact.owner_id == user_id)
    return or_(Deal.owner_id == user_id, Deal.contact_id.in_(owned_contacts))


def _conditions(which: DealFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        column == value
        for column, value in (
            (Deal.pipeline_id, which.pipeline_id),
            (Deal.stage_id, which.stage_id),
            (Deal.owner_id, which.owner_id),
            (Deal.contact_id, which.contact_id),
            (Deal.company_id, which.company_id),
            (Deal.source, which.source),
        )
        if value is not None
    ]
    if which.unowned:
        conditions.append(Deal.owner_id.is_(None))
    if which.state == "open":
        conditions.append(Deal.closed_at.is_(None))
    elif which.state in (StageKind.WON.value, StageKind.LOST.value):
        kinds = select(Stage.id).where(Stage.kind == which.state)
        conditions.append(Deal.stage_id.in_(kinds))
    if which.text:
        conditions.append(contains_text([Deal.title], which.text))
    if which.overdue_on is not None:
        conditions.append(and_(Deal.closed_at.is_(None), Deal.next_step_due_on < which.overdue_on))
    if which.visible_to is not None:
        conditions.append(visible_clause(which.visible_to))
    if which.reached is not None:
        conditions.append(Deal.id.in_(_reached_ids(which)))
    for column, span in ((Deal.created_at, which.created), (Deal.closed_at, which.closed)):
        if span is not None:
            conditions += [column >= span[0], column < span[1]]
    return conditions


def _reached_ids(which: DealFilter) -> Select[int]:
    reached = which.reached
    assert reached is not None
    query = select(StageReach.deal_id).where(
        StageReach.stage_id == reached.stage_id,
        StageReach.reached_at >= reached.since,
        StageReach.reached_at < reached.until,
    )
    if reached.outcome == "moved_on":
        query = query.where(StageReach.moved_on_at.is_not(None))
    elif reached.outcome == "won":
        query = query.where(StageReach.won_at.is_not(None))
    return query


async def page(
    session: AsyncSession,
    which: DealFilter,
    *,
    sort: str = "updated",
    descending: bool = True,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[Deal], int]:
    """One page of the list and how many deals the filter matches in all."""
    columns = SORTS[sort]
    order: list[UnaryExpression[Any]] = [c.desc() if descending else c.asc() for c in columns]
    order.append(Deal.id.desc() if descending else Deal.id.asc())
    rows = await session.scalars(
        select(Deal).where(*_conditions(which)).order_by(*order).offset(offset).limit(limit)
    )
    total = await session.scalar(select(func.count(Deal.id)).where(*_conditions(which)))
    return rows.all(), int(total or 0)


@dataclass(frozen=True, slots=True)
class Column:
    """One stage on the board: how many deals, their sums, and the first cards."""

    stage_id: int
    count: int
    sums: list[Money]
    deals: Sequence[Deal]
    next_cursor: tuple[datetime, int] | None


async def column(
    session: AsyncSession,
    stage_id: int,
    which: DealFilter,
    *,
    after: tuple[datetime, int] | None = None,
    limit: int = 20,
) -> Column:
    """A board column, newest activity first, keyset-paginated on (updated_at, id)."""
    scoped = replace(which, stage_id=stage_id, pipeline_id=None)  # the stage names its pipeline
    query = select(Deal).where(*_conditions(scoped))
    if after is not None:
        query = query.where(
            or_(
                Deal.updated_at < after[0],
                and_(Deal.updated_at == after[0], Deal.id < after[1]),
            )
        )
    rows = (
        await session.scalars(
            query.order_by(Deal.updated_at.desc(), Deal.id.desc()).limit(limit + 1)
        )
    ).all()
    sums_query = (
        select(Deal.currency, func.count(), func.sum(Deal.amount))
        .where(*_conditions(scoped))
        .group_by(Deal.currency)
    )
    count = 0
    money: list[Money] = []
    for currency, n, amount in (await session.execute(sums_query)).all():
        count += int(n)
        money.append(Money(currency, Decimal(amount or 0)))
    shown = rows[:limit]
    more = len(rows) > limit and shown
    return Column(
        stage_id,
        count,
        totals(money),
        shown,
        (shown[-1].updated_at, shown[-1].id) if more else None,
    )


async def history(session: AsyncSession, deal_id: int) -> Sequence[StageChange]:
    rows = await session.scalars(
        select(StageChange)
        .where(StageChange.deal_id == deal_id)
        .order_by(StageChange.changed_at, StageChange.id)
    )
    return rows.all()


async def open_for_contact(session: AsyncSession, contact_id: int) -> Sequence[Deal]:
    rows = await session.scalars(
        select(Deal)
        .where(Deal.contact_id == contact_id, Deal.closed_at.is_(None))
        .order_by(Deal.updated_at.desc(), Deal.id.desc())
    )
    return rows.all()


async def for_contact(session: AsyncSession, contact_id: int, *, limit: int = 20) -> Sequence[Deal]:
    """A contact's deals, open ones first, then the latest closed."""
    rows = await session.scalars(
        select(Deal)
        .where(Deal.contact_id == contact_id)
        .order_by(Deal.closed_at.is_not(None), Deal.updated_at.desc(), Deal.id.desc())
        .limit(limit)
    )
    return rows.all()


async def has_open_deal(session: AsyncSession, contact_id: int) -> bool:
    found = await session.scalar(
        select(Deal.id).where(Deal.contact_id == contact_id, Deal.closed_at.is_(None)).limit(1)
    )
    return found is not None


async def by_origin(session: AsyncSession, key: str) -> Deal | None:
    return await session.scalar(select(Deal).where(Deal.origin_key == key))


async def reassign_owner(session: AsyncSession, from_user: int, to_user: int | None) -> int:
    """Give every deal of ``from_user`` to ``to_user``; the funnel rows follow."""
    moved = await session.execute(
        update(Deal).where(Deal.owner_id == from_user).values(owner_id=to_user)
    )
    await session.execute(
        update(StageReach).where(StageReach.owner_id == from_user).values(owner_id=to_user)
    )
    return int(getattr(moved, "rowcount", 0) or 0)


async def standing_in(session: AsyncSession, stage_id: int) -> Sequence[Deal]:
    """The deals standing in a stage now."""
    rows = await session.scalars(select(Deal).where(Deal.stage_id == stage_id))
    return rows.all()
