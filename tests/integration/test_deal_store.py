"""Deals in the store on each backend, through the services: the history and the funnel rows
every change writes, pipeline edits rewriting them, exact amounts and the report's figures."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from commhub.domain.money import Money
from commhub.models import Deal, Stage, StageReach, User, utcnow
from commhub.services import pipelines
from commhub.services.deal_views import board_column
from commhub.services.deals import (
    SYSTEM,
    DealChanges,
    DealDraft,
    create_deal,
    enter_stage,
    mass_change,
    move_deal,
    update_deal,
)
from commhub.services.funnel import funnel_report
from commhub.store import deals as deal_store
from commhub.store import pipelines as pipeline_store
from commhub.store.deals import DealFilter
from commhub.store.engine import SessionFactory


async def stages(sessions: SessionFactory) -> dict[str, int]:
    """The default pipeline's stages by preset: new_lead, in_progress, proposal, won, lost."""
    async with sessions() as session:
        found = await pipeline_store.stages_of(session, 1)
    return {stage.preset or stage.name: stage.id for stage in found}


async def reached(sessions: SessionFactory, deal_id: int) -> dict[int, StageReach]:
    async with sessions() as session:
        rows = await session.scalars(select(StageReach).where(StageReach.deal_id == deal_id))
        return {row.stage_id: row for row in rows}


async def history(sessions: SessionFactory, deal_id: int) -> list[tuple[int | None, int]]:
    async with sessions() as session:
        changes = await deal_store.history(session, deal_id)
    return [(change.from_stage_id, change.to_stage_id) for change in changes]


async def new_deal(sessions: SessionFactory, title: str, amount: str = "100.00", **kw: str) -> Deal:
    currency = kw.get("currency", "RUB")
    return await create_deal(sessions, DealDraft(title, currency, amount=amount), SYSTEM)


async def test_opening_and_moving_write_history_and_funnel_rows(sessions: SessionFactory) -> None:
    stage = await stages(sessions)
    deal = await new_deal(sessions, "Boiler for the school", "1500.50")
    assert deal.stage_id == stage["new_lead"]
    assert await history(sessions, deal.id) == [(None, stage["new_lead"])]
    assert set(await reached(sessions, deal.id)) == {stage["new_lead"]}

    await move_deal(sessions, deal.id, stage["proposal"], SYSTEM)
    rows = await reached(sessions, deal.id)
    assert set(rows) == {stage["new_lead"], stage["in_progress"], stage["proposal"]}
    assert rows[stage["in_progress"]].skipped and not rows[stage["proposal"]].skipped
    assert rows[stage["new_lead"]].moved_on_at is not None
    assert rows[stage["proposal"]].amount == Decimal("1500.50")

    await move_deal(sessions, deal.id, stage["new_lead"], SYSTEM)
    await move_deal(sessions, deal.id, stage["new_lead"], SYSTEM)  # where it stands: nothing
    assert await history(sessions, deal.id) == [
        (None, stage["new_lead"]),
        (stage["new_lead"], stage["proposal"]),
        (stage["proposal"], stage["new_lead"]),
    ]
    assert len(await reached(sessions, deal.id)) == 3, "moving back counts nothing again"


async def test_a_mass_change_moves_and_reassigns_every_deal(sessions: SessionFactory) -> None:
    stage = await stages(sessions)
    async with sessions.begin() as session:
        anna = User(username="anna", password_hash="-", role="manager")
        session.add(anna)
    deals = [await new_deal(sessions, f"Deal {n}") for n in range(3)]
    changed = await mass_change(
        sessions, [d.id for d in deals], SYSTEM, owner_id=anna.id, stage_id=stage["won"]
    )
    assert changed == 3
    for deal in deals:
        assert await history(sessions, deal.id) == [
            (None, stage["new_lead"]),
            (stage["new_lead"], stage["won"]),
        ]
        rows = await reached(sessions, deal.id)
        assert set(rows) == {stage[s] for s in ("new_lead", "in_progress", "proposal", "won")}
        assert all(row.owner_id == anna.id and row.won_at is not None for row in rows.values())
    async with sessions() as session:
        closed = await session.scalar(select(func.count()).where(Deal.closed_at.is_not(None)))
    assert closed == 3


async def test_changing_amount_or_owner_follows_into_the_funnel_rows(
    sessions: SessionFactory,
) -> None:
    stage = await stages(sessions)
    deal = await new_deal(sessions, "Roof", "10.00")
    await move_deal(sessions, deal.id, stage["in_progress"], SYSTEM)
    await update_deal(sessions, deal.id, DealChanges(amount="20.50", currency="eur"), SYSTEM)
    rows = await reached(sessions, deal.id)
    assert {(row.currency, row.amount) for row in rows.values()} == {("EUR", Decimal("20.50"))}


async def test_reordering_stages_rewrites_the_funnel_rows(sessions: SessionFactory) -> None:
    stage = await stages(sessions)
    deal = await new_deal(sessions, "Windows")
    await move_deal(sessions, deal.id, stage["proposal"], SYSTEM)
    assert stage["in_progress"] in await reached(sessions, deal.id)

    order = ["new_lead", "proposal", "in_progress", "won", "lost"]
    await pipelines.reorder(sessions, 1, [stage[name] for name in order])
    rows = await reached(sessions, deal.id)
    assert set(rows) == {stage["new_lead"], stage["proposal"]}, "nothing passed over now"
    assert not rows[stage["proposal"]].skipped


async def test_a_stage_turned_lost_is_off_the_line(sessions: SessionFactory) -> None:
    stage = await stages(sessions)
    deal = await new_deal(sessions, "Fence")
    await move_deal(sessions, deal.id, stage["proposal"], SYSTEM)
    await pipelines.update_stage(sessions, stage["proposal"], kind="lost")
    rows = await reached(sessions, deal.id)
    assert set(rows) == {stage["new_lead"], stage["proposal"]}
    assert rows[stage["new_lead"]].moved_on_at is None, "a loss is not going further"


async def test_removing_a_stage_with_a_target_keeps_every_deal(sessions: SessionFactory) -> None:
    stage = await stages(sessions)
    deals = [await new_deal(sessions, f"Door {n}") for n in range(3)]
    for deal in deals[:2]:
        await move_deal(sessions, deal.id, stage["in_progress"], SYSTEM)
    moved = await pipelines.remove_stage(
        sessions, stage["in_progress"], SYSTEM, move_to=stage["proposal"]
    )
    assert moved == 2
    async with sessions() as session:
        standing = dict((await session.execute(select(Deal.id, Deal.stage_id))).all())
        removed = await session.get(Stage, stage["in_progress"])
    assert removed is not None and removed.removed_at is not None
    assert standing == {
        deals[0].id: stage["proposal"],
        deals[1].id: stage["proposal"],
        deals[2].id: stage["new_lead"],
    }
    assert await history(sessions, deals[0].id) == [
        (None, stage["new_lead"]),
        (stage["new_lead"], stage["in_progress"]),
        (stage["in_progress"], stage["proposal"]),
    ]
    assert set(await reached(sessions, deals[0].id)) == {stage["new_lead"], stage["proposal"]}


async def test_amounts_stay_exact(sessions: SessionFactory) -> None:
    stage = await stages(sessions)
    await new_deal(sessions, "Tea", "0.10", currency="EUR")
    await new_deal(sessions, "Cake", "0.20", currency="EUR")
    big = await new_deal(sessions, "Plant", "1234567890.12")
    await new_deal(sessions, "Train", "1500", currency="JPY")
    async with sessions() as session:
        stored = await session.get(Deal, big.id)
        assert stored is not None
        await session.refresh(stored)
        assert stored.amount == Decimal("1234567890.12")
    column, _ = await board_column(
        sessions, stage["new_lead"], DealFilter(), SYSTEM, after=None, limit=20
    )
    assert column.count == 4
    assert column.sums == [
        Money("EUR", Decimal("0.30")),
        Money("JPY", Decimal("1500")),
        Money("RUB", Decimal("1234567890.12")),
    ]
    now = utcnow()
    report = await funnel_report(
        sessions, pipeline_id=1, since=now - timedelta(hours=1), until=now + timedelta(hours=1)
    )
    assert report.funnel.stages[0].amounts == column.sums


async def test_the_funnel_report_of_a_known_history(sessions: SessionFactory) -> None:
    stage = await stages(sessions)
    a, b, c, d = [await new_deal(sessions, title) for title in "ABCD"]
    start = utcnow()
    plan = [
        (a, "in_progress", 1),
        (a, "proposal", 3),
        (a, "won", 4),
        (b, "proposal", 2),
        (c, "lost", 1),
    ]
    async with sessions.begin() as session:
        for deal, name, days in plan:
            row = await session.get(Deal, deal.id)
            target = await session.get(Stage, stage[name])
            assert row is not None and target is not None
            if name == "lost":
                row.lost_reason = "no budget"
            await enter_stage(session, row, target, SYSTEM, at=start + timedelta(days=days))
    report = await funnel_report(
        sessions,
        pipeline_id=None,
        since=start - timedelta(hours=1),
        until=start + timedelta(days=30),
    )
    figures = {
        line.stage_id: (line.reached, line.moved_on, line.won, line.to_next, line.to_won)
        for line in report.funnel.stages
    }
    pct = Decimal
    assert figures == {
        stage["new_lead"]: (4, 2, 1, pct("50.0"), pct("25.0")),
        stage["in_progress"]: (2, 2, 1, pct("100.0"), pct("50.0")),
        stage["proposal"]: (2, 1, 1, pct("50.0"), pct("50.0")),
        stage["won"]: (1, 0, 1, None, pct("100.0")),
        stage["lost"]: (1, 0, 0, None, None),
    }
    medians = {line.stage_id: line.median_days for line in report.funnel.stages}
    assert medians[stage["new_lead"]] == Decimal("1.5"), "A: 1 day, B: 2 days, C lost"
    assert medians[stage["in_progress"]] == Decimal("2.0"), "only A entered it"
    assert medians[stage["won"]] is None
    assert report.funnel.stages[0].amounts == [Money("RUB", Decimal("400.00"))]
    assert report.funnel.lost_reasons == [("no budget", 1)]
    assert d.stage_id == stage["new_lead"]

    later = await funnel_report(
        sessions,
        pipeline_id=1,
        since=start + timedelta(days=30),
        until=start + timedelta(days=60),
    )
    assert all(line.reached == 0 for line in later.funnel.stages)
