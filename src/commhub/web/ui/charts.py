"""Geometry of the dashboard's bar chart, drawn as inline SVG by the template.

No chart library and no script: the server works out where each bar goes and
the template writes ``<rect>``s (the page's CSP allows no inline style, so the
colours come from classes). Kept pure so the scale and the bar lengths are
unit-tested.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

LABEL_CHARS: Final = 24
"""Longer names are cut with an ellipsis on the chart; the table and tooltips show them whole."""


@dataclass(frozen=True, slots=True)
class Bar:
    series: str
    """The series' key, also its CSS class suffix (``bar-in``)."""
    value: int
    x: float
    y: float
    width: float
    height: float

    @property
    def value_x(self) -> float:
        """Where the value is written: just past the end of the bar."""
        return self.x + self.width + 4

    @property
    def value_y(self) -> float:
        return self.y + self.height - 2


@dataclass(frozen=True, slots=True)
class BarGroup:
    key: int
    name: str
    """The whole name, for the tooltip."""
    label: str
    """The name as drawn, cut to fit."""
    label_y: float
    bars: tuple[Bar, ...]


@dataclass(frozen=True, slots=True)
class Tick:
    value: int
    x: float


@dataclass(frozen=True, slots=True)
class BarChart:
    width: float
    height: float
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    groups: tuple[BarGroup, ...]
    ticks: tuple[Tick, ...]

    @property
    def axis_label_y(self) -> float:
        return self.plot_bottom + 14


@dataclass(frozen=True, slots=True)
class Layout:
    """Sizes in SVG user units; the SVG scales to the page's width."""

    width: float = 720
    label_width: float = 170
    value_room: float = 40
    bar_height: float = 12
    bar_gap: float = 2
    group_gap: float = 14
    top: float = 8
    axis_room: float = 22


def tick_step(maximum: int, most: int = 5) -> int:
    """A round step (1, 2 or 5 × a power of ten) reaching ``maximum`` in at most ``most``."""
    if maximum <= most:
        return 1
    rough = maximum / most
    power = 10 ** math.floor(math.log10(rough))
    for factor in (1, 2, 5, 10):
        step = factor * power
        if step >= rough:
            return int(step)
    raise AssertionError("unreachable: 10 × power always covers rough")


def ticks_for(maximum: int, most: int = 5) -> list[int]:
    """Axis values from 0 to the first round value at or above ``maximum`` (0–1 when empty)."""
    step = tick_step(maximum, most)
    top = max(step, step * math.ceil(maximum / step))
    return list(range(0, top + 1, step))


def shorten(name: str, limit: int = LABEL_CHARS) -> str:
    return name if len(name) <= limit else name[: limit - 1].rstrip() + "…"


def grouped_bars(
    groups: Sequence[tuple[int, str, Sequence[int]]],
    series: Sequence[str],
    layout: Layout = Layout(),
) -> BarChart:
    """Horizontal bars, one group per ``(key, name, values)``, one bar per series, one scale.

    Bar lengths are proportional to the values on a scale that ends on the
    last tick, so the longest bar never runs past the axis.
    """
    for _, name, values in groups:
        if len(values) != len(series):
            raise ValueError(f"{name!r} has {len(values)} values for {len(series)} series")
    maximum = max((v for _, _, values in groups for v in values), default=0)
    ticks = ticks_for(maximum)
    scale_top = ticks[-1]
    left = layout.label_width
    right = layout.width - layout.value_room
    group_height = len(series) * layout.bar_height + (len(series) - 1) * layout.bar_gap

    made: list[BarGroup] = []
    y = layout.top
    for key, name, values in groups:
        bars = tuple(
            Bar(
                series=kind,
                value=value,
                x=left,
                y=y + index * (layout.bar_height + layout.bar_gap),
                width=round((right - left) * max(value, 0) / scale_top, 2),
                height=layout.bar_height,
            )
            for index, (kind, value) in enumerate(zip(series, values, strict=True))
        )
        made.append(
            BarGroup(
                key=key,
                name=name,
                label=shorten(name),
                label_y=y + group_height / 2 + 4,
                bars=bars,
            )
        )
        y += group_height + layout.group_gap
    bottom = y - layout.group_gap + 4 if groups else layout.top + 4
    return BarChart(
        width=layout.width,
        height=bottom + layout.axis_room,
        plot_left=left,
        plot_right=right,
        plot_top=layout.top - 4,
        plot_bottom=bottom,
        groups=tuple(made),
        ticks=tuple(
            Tick(value=t, x=round(left + (right - left) * t / scale_top, 2)) for t in ticks
        ),
    )
