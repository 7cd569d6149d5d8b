"""The funnel's rows (one per deal and stage reached) and the report's aggregates over them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, TypeVarTuple

from sqlalchemy import Date, Select, cast, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.deals import StageKind
from commhub.domain.funnel import (
    SECONDS_PER_DAY,
    DaysCount,
    Move,
    Reach,
    ReachCount,
    StageLine,
    Tally,
    reaches,
)
from commhub.models import Deal, FunnelDay, FunnelLoss, FunnelStay, StageChange, StageReach
from commhub.store.dialect import upsert_insert

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


TALLIED: Final = (
    StageReach.pipeline_id,
    StageReach.stage_id,
    StageReach.reached_at,
    StageReach.skipped,
    StageReach.moved_on_at,
    StageReach.won_at,
    StageReach.seconds_in,
    StageReach.currency,
    StageReach.amount,
    StageReach.lost_reason,
)
"""What the daily sums are made of (``domain.funnel.Tally``)."""


async def rewrite(
    session: AsyncSession, deals: Sequence[Deal], stages: Sequence[StageLine]
) -> None:
    """Derive the deals' funnel rows afresh from their whole history (``stages``: their
    pipeline's, removed ones included), and move the daily sums by the difference.
    Cheap per deal: a few rows each."""
    if not deals:
        return
    ids = [deal.id for deal in deals]
    moves = await moves_of(session, ids)
    lost = {stage.id for stage in stages if stage.kind is StageKind.LOST}
    tally = Tally()
    old = await session.execute(select(*TALLIED).where(StageReach.deal_id.in_(ids)))
    for row in old.mappings():
        tally.add(dict(row), -1)
    await session.execute(delete(StageReach).where(StageReach.deal_id.in_(ids)))
    rows = [
        _row(deal, reach, lost)
        for deal in deals
        for reach in reaches(stages, moves.get(deal.id, []))
    ]
    for new in rows:
        tally.add(new, +1)
    if rows:
        await session.execute(insert(StageReach), rows)
    await _apply(session, tally.changes())


def _row(deal: Deal, reach: Reach, lost: set[int]) -> dict[str, Any]:
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
        "lost_reason": (deal.lost_reason or "") if reach.stage_id in lost else None,
    }


async def _apply(session: AsyncSession, tally: Tally) -> None:
    """Add a tally to the daily tables, one upsert per key, keys in order (two
    transactions touching the same days lock them in the same order)."""
    if tally.days:
        days = upsert_insert(session, FunnelDay)
        days = days.on_conflict_do_update(
            index_elements=["pipeline_id", "day", "stage_id", "currency"],
            set_={c: getattr(FunnelDay, c) + days.excluded[c] for c in DAY_SUMS},
        )
        await session.execute(
            days,
            [
                {
                    "pipeline_id": p,
                    "stage_id": s,
                    "day": d,
                    "currency": c,
                    **dict(zip(DAY_SUMS, sums, strict=True)),
                }
                for (p, s, d, c), sums in sorted(tally.days.items())
            ],
        )
    for model, column, found in (
        (FunnelStay, "days", tally.stays),
        (FunnelLoss, "reason", tally.losses),
    ):
        if not found:
            continue
        statement = upsert_insert(session, model)
        statement = statement.on_conflict_do_update(
            index_elements=["pipeline_id", "day", "stage_id", column],
            set_={"deals": model.deals + statement.excluded["deals"]},
        )
        await session.execute(
            statement,
            [
                {"pipeline_id": p, "stage_id": s, "day": d, column: k, "deals": n}
                for (p, s, d, k), n in sorted(found.items())
            ],
        )


DAY_SUMS: Final = ("reached", "moved_on", "won", "amount")


async def rebuild(session: AsyncSession, pipeline_id: int) -> None:
    """The pipeline's daily sums made again from its funnel rows (after a bulk load, or to
    repair): one INSERT … SELECT per table."""
    bind = session.get_bind()
    day = (
        func.date(StageReach.reached_at)
        if bind.dialect.name == "sqlite"
        else cast(StageReach.reached_at, Date)
    ).label("day")
    for model in (FunnelDay, FunnelStay, FunnelLoss):
        await session.execute(delete(model).where(model.pipeline_id == pipeline_id))
    mine = StageReach.pipeline_id == pipeline_id
    await session.execute(
        insert(FunnelDay).from_select(
            ["pipeline_id", "day", "stage_id", "currency", *DAY_SUMS],
            select(
                StageReach.pipeline_id,
                day,
                StageReach.stage_id,
                StageReach.currency,
                func.count(),
                func.count(StageReach.moved_on_at),
                func.count(StageReach.won_at),
                func.sum(StageReach.amount),
            )
            .where(mine)
            .group_by(StageReach.pipeline_id, day, StageReach.stage_id, StageReach.currency),
        )
    )
    whole = (StageReach.seconds_in // SECONDS_PER_DAY).label("days")
    await session.execute(
        insert(FunnelStay).from_select(
            ["pipeline_id", "day", "stage_id", "days", "deals"],
            select(StageReach.pipeline_id, day, StageReach.stage_id, whole, func.count())
            .where(mine, StageReach.moved_on_at.is_not(None), StageReach.skipped.is_(False))
            .group_by(StageReach.pipeline_id, day, StageReach.stage_id, whole),
        )
    )
    await session.execute(
        insert(FunnelLoss).from_select(
            ["pipeline_id", "day", "stage_id", "reason", "deals"],
            select(
                StageReach.pipeline_id,
                day,
                StageReach.stage_id,
                StageReach.lost_reason,
                func.count(),
            )
            .where(mine, StageReach.lost_reason.is_not(None))
            .group_by(StageReach.pipeline_id, day, StageReach.stage_id, StageReach.lost_reason),
        )
    )


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


@dataclass(frozen=True, slots=True)
class Split:
    """A period cut into whole UTC days (read from the daily sums) and the rest at its
    edges (read from the funnel rows): the viewer's midnight is seldom UTC's."""

    first_day: date
    end_day: date
    """The day after the last whole one."""
    edges: list[FunnelFilter]


def split(which: FunnelFilter) -> Split | None:
    """``None`` when the daily sums cannot serve: an owner or source filter (the sums keep
    neither), or no whole UTC day inside the period."""
    if which.owner_id is not None or which.source is not None:
        return None
    since, until = which.since.astimezone(UTC), which.until.astimezone(UTC)
    first = since.date() if since.timetz() == MIDNIGHT else since.date() + timedelta(days=1)
    end = until.date()
    if first >= end:
        return None
    start_at = datetime.combine(first, time(), tzinfo=UTC)
    end_at = datetime.combine(end, time(), tzinfo=UTC)
    edges = []
    if since < start_at:
        edges.append(replace(which, until=start_at))
    if end_at < until:
        edges.append(replace(which, since=end_at))
    return Split(first, end, edges)


MIDNIGHT: Final = time(tzinfo=UTC)


async def counts(session: AsyncSession, which: FunnelFilter) -> list[ReachCount]:
    """Per stage and currency: deals that reached it in the period, moved on, were won."""
    parts = split(which)
    if parts is None:
        return await _raw_counts(session, which)
    found = [
        ReachCount(stage_id, currency, int(r), int(m), int(w), amount)
        for stage_id, currency, r, m, w, amount in (
            await session.execute(
                select(
                    FunnelDay.stage_id,
                    FunnelDay.currency,
                    func.sum(FunnelDay.reached),
                    func.sum(FunnelDay.moved_on),
                    func.sum(FunnelDay.won),
                    func.sum(FunnelDay.amount),
                )
                .where(
                    FunnelDay.pipeline_id == which.pipeline_id,
                    FunnelDay.day >= parts.first_day,
                    FunnelDay.day < parts.end_day,
                )
                .group_by(FunnelDay.stage_id, FunnelDay.currency)
            )
        ).all()
    ]
    for edge in parts.edges:
        found += await _raw_counts(session, edge)
    merged: dict[tuple[int, str], ReachCount] = {}
    for count in found:
        key = (count.stage_id, count.currency)
        seen = merged.get(key)
        merged[key] = (
            count
            if seen is None
            else ReachCount(
                count.stage_id,
                count.currency,
                seen.reached + count.reached,
                seen.moved_on + count.moved_on,
                seen.won + count.won,
                seen.amount + count.amount,
            )
        )
    return [c for c in merged.values() if c.reached]


async def _raw_counts(session: AsyncSession, which: FunnelFilter) -> list[ReachCount]:
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
    parts = split(which)
    if parts is None:
        return await _raw_days(session, which)
    found = [
        DaysCount(stage_id, int(d), int(n))
        for stage_id, d, n in (
            await session.execute(
                select(FunnelStay.stage_id, FunnelStay.days, func.sum(FunnelStay.deals))
                .where(
                    FunnelStay.pipeline_id == which.pipeline_id,
                    FunnelStay.day >= parts.first_day,
                    FunnelStay.day < parts.end_day,
                )
                .group_by(FunnelStay.stage_id, FunnelStay.days)
            )
        ).all()
    ]
    for edge in parts.edges:
        found += await _raw_days(session, edge)
    return found


async def _raw_days(session: AsyncSession, which: FunnelFilter) -> list[DaysCount]:
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
    parts = split(which)
    if parts is None:
        found = await _raw_losses(session, which, lost_stage_ids)
    else:
        found = [
            (reason, int(n))
            for reason, n in (
                await session.execute(
                    select(FunnelLoss.reason, func.sum(FunnelLoss.deals))
                    .where(
                        FunnelLoss.pipeline_id == which.pipeline_id,
                        FunnelLoss.stage_id.in_(lost_stage_ids),
                        FunnelLoss.day >= parts.first_day,
                        FunnelLoss.day < parts.end_day,
                    )
                    .group_by(FunnelLoss.reason)
                )
            ).all()
        ]
        for edge in parts.edges:
            found += await _raw_losses(session, edge, lost_stage_ids)
    merged: dict[str, int] = {}
    for reason, n in found:
        merged[reason] = merged.get(reason, 0) + n
    return [(reason, n) for reason, n in merged.items() if n]


async def _raw_losses(
    session: AsyncSession, which: FunnelFilter, lost_stage_ids: Sequence[int]
) -> list[tuple[str, int]]:
    query = _where(
        select(StageReach.lost_reason, func.count()).where(
            StageReach.stage_id.in_(lost_stage_ids), StageReach.lost_reason.is_not(None)
        ),
        which,
    ).group_by(StageReach.lost_reason)
    rows = await session.execute(query)
    return [(reason or "", int(n)) for reason, n in rows.all()]
