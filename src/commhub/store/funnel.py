"""The funnel's rows (one per deal and stage reached) and the report's aggregates over them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVarTuple

from sqlalchemy import Select, and_, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.funnel import (
    SECONDS_PER_DAY,
    DaysCount,
    Move,
    Reach,
    ReachCount,
    StageLine,
    reaches,
)
from commhub.models import Deal, StageChange, StageReach

Ts = TypeVarTuple("Ts")


@dataclass(frozen=True, slots=True)
class FunnelFilter:
    """Which reaches a report counts: one pipeline, a period of reaching, optionally one
    owner and one source."""

    pipeline_id: int
    since: datetime
    until: datetime
    owner_id: int | None = None
    source: str | None = None


async def moves_of(session: AsyncSession, deal_ids: Sequence[int]) -> dict[int, list[Move]]:
    rows = await session.execute(
        select(StageChange.deal_id, StageChange.to_stage_id, StageChange.changed_at)
        .where(StageChange.deal_id.in_(deal_ids))
        .order_by(StageChange.deal_id, StageChange.changed_at, StageChange.id)
    )
    moves: dict[int, list[Move]] = {deal_id: [] for deal_id in deal_ids}
    for deal_id, stage_id, at in rows.all():
        moves[deal_id].append(Move(stage_id, at))
    return moves


async def rewrite(
    session: AsyncSession, deals: Sequence[Deal], stages: Sequence[StageLine]
) -> None:
    """Derive the deals' funnel rows afresh from their whole history (``stages``: their
    pipeline's, removed ones included). Cheap per deal: a few rows each."""
    if not deals:
        return
    ids = [deal.id for deal in deals]
    moves = await moves_of(session, ids)
    await session.execute(delete(StageReach).where(StageReach.deal_id.in_(ids)))
    rows = [
        _row(deal, reach) for deal in deals for reach in reaches(stages, moves.get(deal.id, []))
    ]
    if rows:
        await session.execute(insert(StageReach), rows)


def _row(deal: Deal, reach: Reach) -> dict[str, object]:
    return {
        "deal_id": deal.id,
        "pipeline_id": deal.pipeline_id,
        "stage_id": reach.stage_id,
        "reached_at": reach.reached_at,
        "skipped": reach.skipped,
        "moved_on_at": reach.moved_on_at,
        "won_at": reach.won_at,
        "seconds_in": reach.seconds_in,
        "owner_id": deal.owner_id,
        "source": deal.source,
        "amount": deal.amount,
        "currency": deal.currency,
    }


def _where(query: Select[*Ts], which: FunnelFilter) -> Select[*Ts]:
    query = query.where(
        StageReach.pipeline_id == which.pipeline_id,
        StageReach.reached_at >= which.since,
        StageReach.reached_at < which.until,
    )
    if which.owner_id is not None:
        query = query.where(StageReach.owner_id == which.owner_id)
    if which.source is not None:
        query = query.where(StageReach.source == which.source)
    return query


async def counts(session: AsyncSession, which: FunnelFilter) -> list[ReachCount]:
    """Per stage and currency: deals that reached it in the period, moved on, were won."""
    query = _where(
        select(
            StageReach.stage_id,
            StageReach.currency,
            func.count(),
            func.count(StageReach.moved_on_at),
            func.count(StageReach.won_at),
            func.sum(StageReach.amount),
        ),
        which,
    ).group_by(StageReach.stage_id, StageReach.currency)
    rows = await session.execute(query)
    return [
        ReachCount(stage_id, currency, reached, moved_on, won, amount)
        for stage_id, currency, reached, moved_on, won, amount in rows.all()
    ]


async def days(session: AsyncSession, which: FunnelFilter) -> list[DaysCount]:
    """Per stage, how many deals spent each whole number of days in it before moving on."""
    whole = (StageReach.seconds_in // SECONDS_PER_DAY).label("days")
    query = _where(
        select(StageReach.stage_id, whole, func.count()).where(
            StageReach.moved_on_at.is_not(None), StageReach.skipped.is_(False)
        ),
        which,
    ).group_by(StageReach.stage_id, whole)
    rows = await session.execute(query)
    return [DaysCount(stage_id, int(d), n) for stage_id, d, n in rows.all()]


async def lost_reasons(
    session: AsyncSession, which: FunnelFilter, lost_stage_ids: Sequence[int]
) -> list[tuple[str, int]]:
    """Why the deals that reached a lost stage in the period were lost."""
    if not lost_stage_ids:
        return []
    query = _where(
        select(Deal.lost_reason, func.count())
        .select_from(StageReach)
        .join(Deal, and_(Deal.id == StageReach.deal_id))
        .where(StageReach.stage_id.in_(lost_stage_ids)),
        which,
    ).group_by(Deal.lost_reason)
    rows = await session.execute(query)
    return [(reason or "", int(n)) for reason, n in rows.all()]
