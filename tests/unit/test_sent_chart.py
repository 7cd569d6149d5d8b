"""The per-minute chart's geometry: columns in order, scaled to a round top, none lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from commhub.web.ui.sent_chart import MinuteLayout, minute_chart

START = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_columns_stand_on_the_axis_in_minute_order_scaled_to_a_round_top() -> None:
    minutes = [(START + timedelta(minutes=n), value) for n, value in enumerate([0, 7, 3, 10])]
    chart = minute_chart(minutes, MinuteLayout(width=244, height=130, left=40, right=4))
    assert [bar.value for bar in chart.bars] == [0, 7, 3, 10]
    assert [bar.minute for bar in chart.bars] == [m for m, _ in minutes]
    xs = [bar.x for bar in chart.bars]
    assert xs == sorted(xs) and xs[0] >= chart.plot_left
    assert chart.bars[-1].x + chart.bars[-1].width <= chart.plot_right
    for bar in chart.bars:
        assert round(bar.y + bar.height, 2) == chart.plot_bottom
    assert chart.bars[0].height == 0
    assert [line.value for line in chart.grid] == [0, 5, 10]
    assert chart.bars[3].y == chart.plot_top  # 10 reaches the top line
    assert chart.bars[1].height == round(0.7 * (chart.plot_bottom - chart.plot_top), 2)


def test_an_empty_chart_has_an_axis_and_no_columns() -> None:
    chart = minute_chart([])
    assert chart.bars == ()
    assert [line.value for line in chart.grid] == [0, 1]


def test_a_busy_hour_keeps_every_column_at_least_a_pixel_wide() -> None:
    minutes = [(START + timedelta(minutes=n), 60_000) for n in range(600)]
    chart = minute_chart(minutes)
    assert len(chart.bars) == 600
    assert all(bar.width >= 1 for bar in chart.bars)
    assert all(bar.y == chart.plot_top for bar in chart.bars)
