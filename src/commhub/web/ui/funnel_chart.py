"""Geometry of the funnel chart, drawn as inline SVG by the funnel report's template.

One centred bar per stage along the way to a sale (open stages, then won),
each as wide as the number of deals that reached it against the widest; the
share that went on is written between two bars. Like the dashboard's chart
(``charts.py``): no script, no inline style, pure so it is unit-tested.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from commhub.web.ui.charts import shorten

MIN_BAR: Final = 2.0
"""A stage some deal reached never vanishes from the chart, however few."""


@dataclass(frozen=True, slots=True)
class FunnelBar:
    stage_id: int
    name: str
    """The whole name, for the tooltip."""
    label: str
    kind: str
    """The stage's kind, also its CSS class suffix (``funnel-open``, ``funnel-won``)."""
    value: int
    x: float
    y: float
    width: float
    height: float
    to_next: Decimal | None
    """Per cent of this stage's deals that went further, written below the bar."""

    @property
    def middle_y(self) -> float:
        return self.y + self.height / 2 + 4


@dataclass(frozen=True, slots=True)
class FunnelChart:
    width: float
    height: float
    label_x: float
    centre_x: float
    bars: tuple[FunnelBar, ...]
    step: float
    """From one bar's top to the next one's: the conversion is written in the gap."""


@dataclass(frozen=True, slots=True)
class FunnelLayout:
    width: float = 720
    label_width: float = 190
    bar_height: float = 26
    gap: float = 18
    top: float = 6


def funnel_chart(
    stages: Sequence[tuple[int, str, str, int, Decimal | None]],
    layout: FunnelLayout = FunnelLayout(),
) -> FunnelChart:
    """Bars for ``(stage_id, name, kind, reached, to_next)`` in the order given."""
    plot_left = layout.label_width + 10
    plot_width = layout.width - plot_left - 10
    centre = plot_left + plot_width / 2
    widest = max((value for *_, value, _ in stages), default=0)
    step = layout.bar_height + layout.gap
    bars = []
    for index, (stage_id, name, kind, value, to_next) in enumerate(stages):
        width = 0.0 if widest == 0 or value == 0 else max(MIN_BAR, plot_width * value / widest)
        bars.append(
            FunnelBar(
                stage_id=stage_id,
                name=name,
                label=shorten(name),
                kind=kind,
                value=value,
                x=round(centre - width / 2, 2),
                y=layout.top + index * step,
                width=round(width, 2),
                height=layout.bar_height,
                to_next=to_next,
            )
        )
    height = layout.top * 2 + max(0, len(stages) * step - layout.gap)
    return FunnelChart(layout.width, height, layout.label_width, centre, tuple(bars), step)
