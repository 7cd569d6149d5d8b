"""Geometry of a campaign's "messages sent per minute" chart, drawn as inline SVG.

One column per minute, oldest on the left, as tall as that minute's count
against the axis's round top. Like the dashboard's chart (``charts.py``): no
script draws it and no inline style colours it; the campaign page's poll
swaps in the same markup, rendered here on the server, as numbers change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from commhub.web.ui.charts import ticks_for


@dataclass(frozen=True, slots=True)
class MinuteBar:
    minute: datetime
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class GridLine:
    value: int
    y: float


@dataclass(frozen=True, slots=True)
class MinuteChart:
    width: float
    height: float
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    bars: tuple[MinuteBar, ...]
    grid: tuple[GridLine, ...]

    @property
    def axis_label_y(self) -> float:
        return self.plot_bottom + 14


@dataclass(frozen=True, slots=True)
class MinuteLayout:
    width: float = 720
    height: float = 180
    left: float = 44
    right: float = 8
    top: float = 8
    bottom: float = 22
    gap: float = 2


def minute_chart(
    minutes: Sequence[tuple[datetime, int]], layout: MinuteLayout = MinuteLayout()
) -> MinuteChart:
    """Columns for ``(minute, sent)`` pairs in the order given (empty: an empty plot)."""
    plot_left, plot_right = layout.left, layout.width - layout.right
    plot_top, plot_bottom = layout.top, layout.height - layout.bottom
    ticks = ticks_for(max((value for _, value in minutes), default=0), most=4)
    top = ticks[-1]
    plot_height = plot_bottom - plot_top
    slot = (plot_right - plot_left) / max(1, len(minutes))
    bars = []
    for index, (minute, value) in enumerate(minutes):
        height = round(plot_height * value / top, 2) if top else 0.0
        bars.append(
            MinuteBar(
                minute=minute,
                value=value,
                x=round(plot_left + index * slot + layout.gap / 2, 2),
                y=round(plot_bottom - height, 2),
                width=round(max(1.0, slot - layout.gap), 2),
                height=height,
            )
        )
    grid = tuple(
        GridLine(value=tick, y=round(plot_bottom - plot_height * tick / top, 2)) for tick in ticks
    )
    return MinuteChart(
        width=layout.width,
        height=layout.height,
        plot_left=plot_left,
        plot_right=plot_right,
        plot_top=plot_top,
        plot_bottom=plot_bottom,
        bars=tuple(bars),
        grid=grid,
    )
