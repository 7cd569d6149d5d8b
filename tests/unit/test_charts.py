"""The dashboard chart's geometry: round scales, proportional bars, one group per operator."""

from __future__ import annotations

import pytest

from commhub.web.ui.charts import Layout, grouped_bars, shorten, tick_step, ticks_for

SERIES = ("in", "out", "missed")


@pytest.mark.parametrize(
    ("maximum", "ticks"),
    [
        (0, [0, 1]),
        (3, [0, 1, 2, 3]),
        (7, [0, 2, 4, 6, 8]),
        (23, [0, 5, 10, 15, 20, 25]),
        (100, [0, 20, 40, 60, 80, 100]),
        (101, [0, 50, 100, 150]),
        (4321, [0, 1000, 2000, 3000, 4000, 5000]),
    ],
)
def test_ticks_are_round_and_cover_the_largest_value(maximum: int, ticks: list[int]) -> None:
    assert ticks_for(maximum) == ticks


def test_steps_are_one_two_or_five_times_a_power_of_ten() -> None:
    for maximum in range(1, 5000, 37):
        step = tick_step(maximum)
        assert str(step).rstrip("0") in {"1", "2", "5"}
        assert maximum / step <= 5


def test_bars_are_proportional_and_the_longest_ends_on_the_last_tick() -> None:
    layout = Layout(width=600, label_width=100, value_room=0)
    chart = grouped_bars([(1, "Anna", (10, 5, 0)), (2, "Boris", (2, 0, 1))], SERIES, layout)

    anna, boris = chart.groups
    assert [b.width for b in anna.bars] == [500, 250, 0]
    assert [b.width for b in boris.bars] == [100, 0, 50]
    assert chart.ticks[-1].value == 10 and chart.ticks[-1].x == 600
    assert all(bar.x == 100 for group in chart.groups for bar in group.bars)


def test_groups_stack_without_overlapping_and_fit_the_picture() -> None:
    chart = grouped_bars([(i, f"Op {i}", (i, i, i)) for i in range(1, 6)], SERIES)

    tops = [group.bars[0].y for group in chart.groups]
    bottoms = [group.bars[-1].y + group.bars[-1].height for group in chart.groups]
    assert all(bottom < top for bottom, top in zip(bottoms, tops[1:], strict=False))
    assert bottoms[-1] <= chart.plot_bottom < chart.height
    assert [bar.series for bar in chart.groups[0].bars] == list(SERIES)


def test_nobody_with_any_calls_draws_empty_bars_on_a_zero_to_one_scale() -> None:
    chart = grouped_bars([(1, "Anna", (0, 0, 0))], SERIES)

    assert [tick.value for tick in chart.ticks] == [0, 1]
    assert all(bar.width == 0 for bar in chart.groups[0].bars)


def test_long_names_are_cut_on_the_chart_but_kept_whole_for_the_tooltip() -> None:
    name = "Konstantin Konstantinopolsky-Rimsky"
    group = grouped_bars([(1, name, (1, 0, 0))], SERIES).groups[0]

    assert group.name == name
    assert group.label.endswith("…") and len(group.label) <= 24
    assert shorten("Anna") == "Anna"


def test_values_must_match_the_series() -> None:
    with pytest.raises(ValueError, match="Anna"):
        grouped_bars([(1, "Anna", (1, 2))], SERIES)
