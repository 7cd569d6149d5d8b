"""The funnel's daily sums stay equal to its rows, and a report read from them (whole UTC
days, the rows at the edges) equals one read from the rows alone, on both backends."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from commhub.domain.deals import DealSource
from commhub.models import Deal, FunnelDay, FunnelLoss, FunnelStay, StageChange
from commhub.services import deals, pipelines
from commhub.services.deals import SYSTEM, DealChanges, DealDraft
from commhub.store import funnel as store
from commhub.store import pipelines as pipeline_store
from commhub.store.engine import SessionFactory
from commhub.store.funnel import FunnelFilter

START = datetime(2026, 3, 1, tzinfo=UTC)


async def _sums(sessions: SessionFactory) -> dict[str, set[tuple[object, ...]]]:
    """The daily tables as sets of rows, rows that sum to nothing left out."""
    async with sessions() as session:
        days = (await session.execute(select(FunnelDay))).scalars().all()
        stays = (await session.execute(select(FunnelStay))).scalars().all()
        losses = (await session.execute(select(FunnelLoss))).scalars().all()
    return {
        "days": {
            (r.pipeline_id, r.day, r.stage_id, r.currency, r.reached, r.moved_on, r.won, r.amount)
            for r in days
            if r.reached or r.moved_on or r.won or r.amount
        },
        "stays": {(r.pipeline_id, r.day, r.stage_id, r.days, r.deals) for r in stays if r.deals},
        "losses": {
            (r.pipeline_id, r.day, r.stage_id, r.reason, r.deals) for r in losses if r.deals
        },
    }


async def _history(sessions: SessionFactory, seed: int) -> int:
    """Forty deals moved at random, their history then spread over two months and their
    funnel rows rewritten (the daily sums follow by difference). Returns the pipeline."""
    rng = random.Random(seed)
    view = (await pipelines.pipelines(sessions))[0]
    stages = [s.id for s in view.stages]
    made = []
    for n in range(40):
        deal = await deals.create_deal(
            sessions,
            DealDraft(
                title=f"Deal {n}",
                currency=rng.choice(["RUB", "EUR", "JPY"]),
                amount=str(rng.randrange(1, 10_000)),
                source=rng.choice(list(DealSource)),
            ),
            SYSTEM,
        )
        for _ in range(rng.randrange(0, 6)):
            await deals.move_deal(
                sessions,
                deal.id,
                rng.choice(stages),
                SYSTEM,
                lost_reason=rng.choice(["", "price", "rival"]),
            )
        if rng.random() < 0.3:
            await deals.update_deal(
                sessions, deal.id, DealChanges(amount="12.00", currency="EUR"), SYSTEM
            )
        made.append(deal.id)
    async with sessions.begin() as session:
        changes = (await session.scalars(select(StageChange).order_by(StageChange.id))).all()
        clock = {deal_id: START + timedelta(hours=rng.randrange(0, 24 * 30)) for deal_id in made}
        for change in changes:
            clock[change.deal_id] += timedelta(minutes=rng.randrange(10, 60 * 24 * 6))
            await session.execute(
                update(StageChange)
                .where(StageChange.id == change.id)
                .values(changed_at=clock[change.deal_id])
            )
        lines = pipeline_store.lines(
            await pipeline_store.stages_of(session, view.pipeline.id, removed=True)
        )
        rows = (await session.scalars(select(Deal).order_by(Deal.id))).all()
        await store.rewrite(session, rows, lines)
    return view.pipeline.id


async def test_the_daily_sums_equal_the_rows_after_any_history(sessions: SessionFactory) -> None:
    pipeline_id = await _history(sessions, seed=7)
    # A reorder and a stage turned lost rewrite every row of the pipeline.
    view = (await pipelines.pipelines(sessions))[0]
    ids = [s.id for s in view.stages]
    await pipelines.reorder(sessions, pipeline_id, [ids[1], ids[0], *ids[2:]])
    await pipelines.update_stage(sessions, ids[2], kind="lost")
    kept = await _sums(sessions)
    async with sessions() as session:
        await store.rebuild(session, pipeline_id)
        await session.flush()
        days = (await session.execute(select(FunnelDay))).scalars().all()
        stays = (await session.execute(select(FunnelStay))).scalars().all()
        losses = (await session.execute(select(FunnelLoss))).scalars().all()
        rebuilt = {
            (r.pipeline_id, r.day, r.stage_id, r.currency, r.reached, r.moved_on, r.won, r.amount)
            for r in days
        }
        rebuilt_stays = {(r.pipeline_id, r.day, r.stage_id, r.days, r.deals) for r in stays}
        rebuilt_losses = {(r.pipeline_id, r.day, r.stage_id, r.reason, r.deals) for r in losses}
        await session.rollback()
    assert kept["days"] == rebuilt
    assert kept["stays"] == rebuilt_stays
    assert kept["losses"] == rebuilt_losses
    assert kept["days"], "the history made no sums"


async def test_a_report_from_the_daily_sums_equals_one_from_the_rows(
    sessions: SessionFactory,
) -> None:
    pipeline_id = await _history(sessions, seed=11)
    async with sessions() as session:
        lost = [
            s.id for s in await pipeline_store.stages_of(session, pipeline_id) if s.kind == "lost"
        ]
        for offset in (
            timedelta(hours=3),
            timedelta(hours=-7),
            timedelta(hours=5, minutes=30),
            timedelta(0),
        ):
            for first, length in ((3, 20), (0, 70), (10, 1), (12, 0.5)):
                since = START + timedelta(days=first) - offset
                until = since + timedelta(days=length)
                which = FunnelFilter(pipeline_id, since, until)
                assert store.split(which) is not None or length < 2
                both = (
                    sorted(await store.counts(session, which), key=_key),
                    sorted(_merged(await store._raw_counts(session, which)), key=_key),
                )
                assert both[0] == both[1], (offset, first, length)
                assert _hist(await store.days(session, which)) == _hist(
                    await store._raw_days(session, which)
                )
                assert dict(await store.lost_reasons(session, which, lost)) == dict(
                    await store._raw_losses(session, which, lost)
                )


def _key(count: store.ReachCount) -> tuple[int, str]:
    return count.stage_id, count.currency


def _merged(counts: list[store.ReachCount]) -> list[store.ReachCount]:
    return [c for c in counts if c.reached]


def _hist(rows: list[store.DaysCount]) -> dict[tuple[int, int], int]:
    found: dict[tuple[int, int], int] = {}
    for row in rows:
        found[(row.stage_id, row.days)] = found.get((row.stage_id, row.days), 0) + row.deals
    return {k: v for k, v in found.items() if v}
