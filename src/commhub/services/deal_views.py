"""What the console and the API show of deals: the list, the board, one deal, a contact's.

Reads only; each returns values with the names they need beside them (stage,
owner, contact), so a page gets no session.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.models import Deal, Invoice, Payment, Pipeline, Stage, StageChange
from commhub.services.database import Database
from commhub.services.deals import Actor, check_visible
from commhub.services.errors import InvalidInput, NotFound
from commhub.store import contacts as contact_store
from commhub.store import deals as store
from commhub.store import invoices as invoice_store
from commhub.store import pipelines as pipeline_store
from commhub.store import users as user_store
from commhub.store.deals import Column as Column
from commhub.store.deals import DealFilter as DealFilter  # the web builds its filters
from commhub.store.deals import Reached as Reached


@dataclass(frozen=True, slots=True)
class Names:
    """Who and what the ids on a page of deals are."""

    stages: dict[int, Stage]
    users: dict[int, str]
    contacts: dict[int, str]


@dataclass(frozen=True, slots=True)
class DealList:
    deals: Sequence[Deal]
    total: int
    names: Names


@dataclass(frozen=True, slots=True)
class Board:
    pipeline: Pipeline
    columns: list[Column]
    names: Names


@dataclass(frozen=True, slots=True)
class DealPage:
    deal: Deal
    pipeline: Pipeline
    stages: Sequence[Stage]
    """The pipeline's stages now, in order (where the deal may move)."""
    history: Sequence[StageChange]
    invoices: Sequence[Invoice]
    payments: dict[int, list[Payment]]
    """By invoice id, oldest first."""
    names: Names


def scoped(which: DealFilter, actor: Actor) -> DealFilter:
    """The filter an operator's list runs with: only deals they may see."""
    if actor.sees_all:
        return which
    return replace(which, visible_to=actor.user_id)


async def deal_list(
    db: Database,
    which: DealFilter,
    actor: Actor,
    *,
    sort: str = "updated",
    descending: bool = True,
    offset: int = 0,
    limit: int = 50,
) -> DealList:
    if sort not in store.SORTS:
        raise InvalidInput("sort", f"sort by one of {', '.join(store.SORTS)}")
    async with db() as session:
        deals, total = await store.page(
            session,
            scoped(which, actor),
            sort=sort,
            descending=descending,
            offset=offset,
            limit=limit,
        )
        return DealList(deals, total, await names_for(session, deals))


async def board(
    db: Database,
    pipeline_id: int | None,
    which: DealFilter,
    actor: Actor,
    *,
    limit: int = 20,
) -> Board:
    """Every stage of a pipeline as a column with its count, sums and first cards."""
    async with db() as session:
        pipeline = await _pipeline(session, pipeline_id)
        stages = await pipeline_store.stages_of(session, pipeline.id)
        which = scoped(replace(which, pipeline_id=pipeline.id), actor)
        columns = [await store.column(session, s.id, which, limit=limit) for s in stages]
        deals = [deal for column in columns for deal in column.deals]
        return Board(pipeline, columns, await names_for(session, deals))


async def board_column(
    db: Database,
    stage_id: int,
    which: DealFilter,
    actor: Actor,
    *,
    after: tuple[datetime, int] | None,
    limit: int = 20,
) -> tuple[Column, Names]:
    """More cards of one column (the board's "show more", and the benchmark's page)."""
    async with db() as session:
        stage = await session.get(Stage, stage_id)
        if stage is None or stage.removed_at is not None:
            raise NotFound("stage", stage_id)
        column = await store.column(
            session, stage_id, scoped(which, actor), after=after, limit=limit
        )
        return column, await names_for(session, column.deals)


async def deal_page(db: Database, deal_id: int, actor: Actor) -> DealPage:
    async with db() as session:
        deal = await session.get(Deal, deal_id)
        if deal is None:
            raise NotFound("deal", deal_id)
        await check_visible(session, deal, actor)
        pipeline = await session.get(Pipeline, deal.pipeline_id)
        assert pipeline is not None
        history = await store.history(session, deal.id)
        invoices = await invoice_store.of_deal(session, deal.id)
        payments: dict[int, list[Payment]] = {invoice.id: [] for invoice in invoices}
        for payment in await invoice_store.payments_of(session, [i.id for i in invoices]):
            payments[payment.invoice_id].append(payment)
        users = [deal.owner_id, *(c.changed_by_id for c in history)]
        return DealPage(
            deal=deal,
            pipeline=pipeline,
            stages=await pipeline_store.stages_of(session, pipeline.id),
            history=history,
            invoices=invoices,
            payments=payments,
            names=await names_for(session, [deal], more_users=users),
        )


async def deals_of_contact(db: Database, contact_id: int, *, limit: int = 20) -> DealList:
    """A contact's deals for its card and screen pop: open first, with their stages."""
    async with db() as session:
        deals = await store.for_contact(session, contact_id, limit=limit)
        return DealList(deals, len(deals), await names_for(session, deals))


async def names_for(
    session: AsyncSession, deals: Sequence[Deal], *, more_users: Iterable[int | None] = ()
) -> Names:
    stages = {s.id: s for s in await pipeline_store.all_stages(session)}
    users = await user_store.names_of(session, [*(d.owner_id for d in deals), *more_users])
    contacts = await contact_store.names_of(session, [d.contact_id for d in deals])
    return Names(stages, users, contacts)


async def _pipeline(session: AsyncSession, pipeline_id: int | None) -> Pipeline:
    found = await pipeline_store.chosen_or_default(session, pipeline_id)
    if found is None:
        raise NotFound("pipeline", "default" if pipeline_id is None else pipeline_id)
    return found
