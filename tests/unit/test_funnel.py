"""The funnel's counting rules: what a deal's moves make it reach, and the report's figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from commhub.domain.deals import StageKind
from commhub.domain.funnel import (
    DaysCount,
    Move,
    Reach,
    ReachCount,
    StageLine,
    funnel_of,
    line_of,
    median_days,
    percent,
    reaches,
)
from commhub.domain.money import Money

NEW, PROGRESS, PROPOSAL, WON, LOST = 1, 2, 3, 4, 5
STAGES = [
    StageLine(NEW, 0, StageKind.OPEN),
    StageLine(PROGRESS, 1, StageKind.OPEN),
    StageLine(PROPOSAL, 2, StageKind.OPEN),
    StageLine(WON, 3, StageKind.WON),
    StageLine(LOST, 4, StageKind.LOST),
]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def walk(*steps: tuple[int, float]) -> dict[int, Reach]:
    found = reaches(STAGES, [Move(stage, at(hours)) for stage, hours in steps])
    by_stage = {reach.stage_id: reach for reach in found}
    assert len(by_stage) == len(found), "a stage reached twice"
    return by_stage


def test_a_skipped_stage_counts_as_passed_with_no_time_in_it() -> None:
    found = walk((NEW, 0), (PROPOSAL, 5))
    assert set(found) == {NEW, PROGRESS, PROPOSAL}
    skipped = found[PROGRESS]
    assert skipped.skipped and skipped.reached_at == at(5) and skipped.moved_on_at == at(5)
    assert skipped.seconds_in == 0
    assert not found[NEW].skipped and found[NEW].moved_on_at == at(5)
    assert found[NEW].seconds_in == 5 * 3600
    assert found[PROPOSAL].moved_on_at is None and found[PROPOSAL].won_at is None


def test_moving_back_counts_nothing_twice_and_stays_add_up() -> None:
    found = walk((NEW, 0), (PROGRESS, 1), (NEW, 3), (PROGRESS, 4), (PROPOSAL, 10))
    assert set(found) == {NEW, PROGRESS, PROPOSAL}
    assert found[NEW].reached_at == at(0) and found[NEW].moved_on_at == at(1)
    assert found[PROGRESS].reached_at == at(1) and found[PROGRESS].moved_on_at == at(10)
    assert found[NEW].seconds_in == (1 + 1) * 3600
    assert found[PROGRESS].seconds_in == (2 + 6) * 3600


def test_lost_is_off_the_line() -> None:
    found = walk((NEW, 0), (PROGRESS, 2), (LOST, 26))
    assert set(found) == {NEW, PROGRESS, LOST}
    assert found[PROGRESS].moved_on_at is None, "losing a deal is not going further"
    assert found[PROGRESS].seconds_in == 24 * 3600
    assert found[LOST].won_at is None and not found[LOST].skipped


def test_won_after_a_skip_reaches_every_open_stage() -> None:
    found = walk((NEW, 0), (WON, 48))
    assert set(found) == {NEW, PROGRESS, PROPOSAL, WON}
    assert all(reach.won_at == at(48) for reach in found.values())
    assert found[PROGRESS].skipped and found[PROPOSAL].skipped
    assert found[PROPOSAL].moved_on_at == at(48)


def test_a_skipped_stage_entered_later_is_no_longer_skipped() -> None:
    found = walk((NEW, 0), (PROPOSAL, 1), (PROGRESS, 2), (PROPOSAL, 5))
    assert not found[PROGRESS].skipped
    assert found[PROGRESS].reached_at == at(1), "reached when it was passed over"
    assert found[PROGRESS].seconds_in == 3 * 3600


def test_a_reopened_lost_deal_won_later_counts_once_per_stage() -> None:
    found = walk((NEW, 0), (LOST, 1), (PROGRESS, 2), (WON, 3))
    assert set(found) == {NEW, PROGRESS, PROPOSAL, WON, LOST}
    assert found[NEW].moved_on_at == at(2)
    assert found[LOST].won_at == at(3)


def test_removed_stages_are_ignored() -> None:
    stages = [
        StageLine(NEW, 0, StageKind.OPEN),
        StageLine(PROGRESS, 1, StageKind.OPEN, removed=True),
        StageLine(PROPOSAL, 2, StageKind.OPEN),
        StageLine(WON, 3, StageKind.WON),
    ]
    assert [s.id for s in line_of(stages)] == [NEW, PROPOSAL, WON]
    found = reaches(stages, [Move(NEW, at(0)), Move(PROGRESS, at(1)), Move(PROPOSAL, at(2))])
    assert {r.stage_id for r in found} == {NEW, PROPOSAL}


def test_moves_count_in_time_order_whatever_order_they_come_in() -> None:
    moves = [Move(PROPOSAL, at(2)), Move(NEW, at(0)), Move(PROGRESS, at(1))]
    assert reaches(STAGES, moves) == reaches(STAGES, sorted(moves, key=lambda m: m.at))


def test_median_of_whole_days() -> None:
    assert median_days([]) is None
    assert median_days([(3, 0)]) is None
    assert median_days([(4, 1)]) == Decimal("4.0")
    assert median_days([(1, 1), (2, 1)]) == Decimal("1.5")
    assert median_days([(10, 1), (3, 2)]) == Decimal("3.0")
    assert median_days([(0, 2), (7, 2)]) == Decimal("3.5")
    assert median_days([(1, 1), (2, 2), (9, 1)]) == Decimal("2.0")


def test_percent_rounds_half_up_to_one_decimal() -> None:
    assert percent(0, 0) is None
    assert percent(1, 3) == Decimal("33.3")
    assert percent(2, 3) == Decimal("66.7")
    assert percent(1, 16) == Decimal("6.3")
    assert percent(3, 3) == Decimal("100.0")


def test_the_report_keeps_currencies_apart_and_puts_lost_last() -> None:
    counts = [
        ReachCount(NEW, "RUB", 3, 2, 1, Decimal("300.00")),
        ReachCount(NEW, "EUR", 1, 1, 0, Decimal("10.50")),
        ReachCount(PROGRESS, "RUB", 2, 1, 1, Decimal("200.00")),
        ReachCount(WON, "RUB", 1, 0, 1, Decimal("100.00")),
        ReachCount(LOST, "EUR", 1, 0, 0, Decimal("10.50")),
    ]
    days = [DaysCount(NEW, 1, 2), DaysCount(NEW, 4, 1)]
    report = funnel_of(STAGES, counts, days, [("", 1), ("price", 2), ("budget", 2)])
    assert [s.stage_id for s in report.stages] == [NEW, PROGRESS, PROPOSAL, WON, LOST]
    new = report.stages[0]
    assert (new.reached, new.moved_on, new.won) == (4, 3, 1)
    assert new.to_next == Decimal("75.0") and new.to_won == Decimal("25.0")
    assert new.amounts == [Money("EUR", Decimal("10.50")), Money("RUB", Decimal("300.00"))]
    assert new.median_days == Decimal("1.0")
    proposal = report.stages[2]
    assert proposal.reached == 0 and proposal.to_next is None and proposal.amounts == []
    won, lost = report.stages[3], report.stages[4]
    assert won.to_next is None and won.to_won == Decimal("100.0")
    assert lost.to_next is None and lost.to_won is None
    assert report.lost_reasons == [("budget", 2), ("price", 2), ("", 1)]


stage_ids = st.sampled_from([NEW, PROGRESS, PROPOSAL, WON, LOST])
histories = st.lists(
    st.tuples(stage_ids, st.integers(min_value=0, max_value=10_000)), min_size=1, max_size=12
)


@given(histories)
def test_any_history_reaches_each_stage_once_in_line_order(steps: list[tuple[int, int]]) -> None:
    elapsed = 0
    moves = []
    for stage, gap in steps:
        elapsed += gap
        moves.append(Move(stage, at(elapsed / 60)))
    found = reaches(STAGES, moves)
    by_stage = {reach.stage_id: reach for reach in found}
    assert len(by_stage) == len(found)
    assert set(by_stage) <= {move.to_stage_id for move in moves} | {NEW, PROGRESS, PROPOSAL}
    line = [s.id for s in line_of(STAGES) if s.id in by_stage]
    times = [by_stage[stage].reached_at for stage in line]
    assert times == sorted(times)
    for reach in found:
        assert reach.moved_on_at is None or reach.moved_on_at >= reach.reached_at
        assert reach.won_at is None or reach.won_at >= moves[0].at
        assert reach.seconds_in >= 0
        if reach.skipped:
            assert reach.seconds_in == 0 or reach.stage_id in {m.to_stage_id for m in moves}
    total = int((moves[-1].at - moves[0].at).total_seconds())
    assert sum(reach.seconds_in for reach in found) <= total
