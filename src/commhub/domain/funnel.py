"""The sales funnel's arithmetic: which stages a deal has reached, and the report over them.

Counting rules (also in docs/deals.md):

- A stage is *reached* the first time the deal enters it, or passes over it:
  a deal moved from "New lead" straight to "Proposal" has reached "In
  progress" too, at the same moment (it is *skipped*: no time spent there).
  Won stages sit at the end of the line of open stages; lost stages are off
  the line, and reaching one reaches nothing else.
- Reaching is a fact that stays: a deal moved back to an earlier stage is not
  counted again there, and a later move forward counts nothing twice.
- A stage's *conversion to the next* is the share of the deals that reached it
  which have reached any stage further along; *to won*, the share which have
  reached a won stage.
- *Days in a stage* add up every stay that has ended; the median is over the
  deals that entered the stage themselves (not by skipping) and moved on.

Everything here is pure: the store keeps one :class:`Reach` row per deal and
stage, rewritten from the history by :func:`reaches`, and the report is an
aggregate of those rows shaped by :func:`funnel_of`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from commhub.domain.deals import StageKind
from commhub.domain.money import Money, totals

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class StageLine:
    """A stage as the funnel sees it: where it stands and what reaching it means."""

    id: int
    position: int
    kind: StageKind
    removed: bool = False


@dataclass(frozen=True, slots=True)
class Move:
    """A deal entering a stage (its creation is the first move)."""

    to_stage_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class Reach:
    stage_id: int
    reached_at: datetime
    skipped: bool
    moved_on_at: datetime | None
    won_at: datetime | None
    seconds_in: int


@dataclass(slots=True)
class _Progress:
    reached_at: datetime
    skipped: bool
    moved_on_at: datetime | None = None
    seconds_in: int = 0


def line_of(stages: Iterable[StageLine]) -> list[StageLine]:
    """The stages a deal advances along, in order: open ones, then won ones."""
    return sorted(
        (s for s in stages if not s.removed and s.kind is not StageKind.LOST),
        key=lambda s: (s.kind is StageKind.WON, s.position, s.id),
    )


def reaches(stages: Sequence[StageLine], moves: Sequence[Move]) -> list[Reach]:
    """Every stage the deal has reached, from its moves in time order (see the module)."""
    line = line_of(stages)
    place = {stage.id: index for index, stage in enumerate(line)}
    kinds = {s.id: s.kind for s in stages if not s.removed}
    progress: dict[int, _Progress] = {}
    won_at: datetime | None = None
    current: int | None = None
    since: datetime | None = None
    for move in sorted(moves, key=lambda m: m.at):
        if current is not None and since is not None and current in progress:
            progress[current].seconds_in += max(0, int((move.at - since).total_seconds()))
        current, since = move.to_stage_id, move.at
        if move.to_stage_id in place:
            here = place[move.to_stage_id]
            for stage in line[: here + 1]:
                passed = stage.id != move.to_stage_id
                seen = progress.get(stage.id)
                if seen is None:
                    seen = progress[stage.id] = _Progress(move.at, skipped=passed)
                elif not passed:
                    seen.skipped = False
                if passed and seen.moved_on_at is None:
                    seen.moved_on_at = move.at
            if kinds[move.to_stage_id] is StageKind.WON and won_at is None:
                won_at = move.at
        elif kinds.get(move.to_stage_id) is StageKind.LOST:
            progress.setdefault(move.to_stage_id, _Progress(move.at, skipped=False))
    return [
        Reach(
            stage_id=stage_id,
            reached_at=p.reached_at,
            skipped=p.skipped,
            moved_on_at=p.moved_on_at,
            won_at=won_at,
            seconds_in=p.seconds_in,
        )
        for stage_id, p in progress.items()
    ]


@dataclass(frozen=True, slots=True)
class ReachCount:
    """One group of the report's aggregate: reaches of a stage in one currency."""

    stage_id: int
    currency: str
    reached: int
    moved_on: int
    won: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class DaysCount:
    """How many deals spent ``days`` whole days in a stage before moving on."""

    stage_id: int
    days: int
    deals: int


@dataclass(frozen=True, slots=True)
class FunnelStage:
    stage_id: int
    kind: StageKind
    reached: int
    moved_on: int
    won: int
    to_next: Decimal | None
    """Per cent of the deals that reached it which went further; ``None`` where there is
    no further (won and lost stages) or nothing reached it."""
    to_won: Decimal | None
    amounts: list[Money]
    median_days: Decimal | None


@dataclass(frozen=True, slots=True)
class Funnel:
    stages: list[FunnelStage]
    lost_reasons: list[tuple[str, int]] = field(default_factory=list)
    """Why deals were lost in the period, most frequent first (``""``: no reason given)."""


def percent(part: int, whole: int) -> Decimal | None:
    if whole == 0:
        return None
    return (Decimal(100 * part) / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def median_days(histogram: Iterable[tuple[int, int]]) -> Decimal | None:
    """The median of whole days given as (days, how many deals) pairs."""
    pairs = sorted((days, n) for days, n in histogram if n > 0)
    total = sum(n for _, n in pairs)
    if total == 0:
        return None
    wanted = (total - 1) // 2, total // 2
    values: list[int] = []
    seen = 0
    for days, n in pairs:
        for position in wanted:
            if seen <= position < seen + n:
                values.append(days)
        seen += n
    return (Decimal(values[0] + values[1]) / 2).quantize(Decimal("0.1"), ROUND_HALF_UP)


def funnel_of(
    stages: Sequence[StageLine],
    counts: Iterable[ReachCount],
    days: Iterable[DaysCount],
    lost_reasons: Iterable[tuple[str, int]] = (),
) -> Funnel:
    """The report: each stage of the line in order, then the lost stages."""
    by_stage: dict[int, list[ReachCount]] = {}
    for count in counts:
        by_stage.setdefault(count.stage_id, []).append(count)
    histograms: dict[int, list[tuple[int, int]]] = {}
    for row in days:
        histograms.setdefault(row.stage_id, []).append((row.days, row.deals))
    shown = line_of(stages) + sorted(
        (s for s in stages if not s.removed and s.kind is StageKind.LOST),
        key=lambda s: (s.position, s.id),
    )
    result = []
    for stage in shown:
        rows = by_stage.get(stage.id, [])
        reached = sum(r.reached for r in rows)
        moved_on = sum(r.moved_on for r in rows)
        won = sum(r.won for r in rows)
        open_stage = stage.kind is StageKind.OPEN
        result.append(
            FunnelStage(
                stage_id=stage.id,
                kind=stage.kind,
                reached=reached,
                moved_on=moved_on,
                won=won,
                to_next=percent(moved_on, reached) if open_stage else None,
                to_won=percent(won, reached) if stage.kind is not StageKind.LOST else None,
                amounts=totals(Money(r.currency, r.amount) for r in rows if r.reached),
                median_days=median_days(histograms.get(stage.id, ())),
            )
        )
    reasons = sorted(lost_reasons, key=lambda pair: (-pair[1], pair[0]))
    return Funnel(result, reasons)


def whole_days(seconds: int) -> int:
    return seconds // SECONDS_PER_DAY


DayKey = tuple[int, int, date, str]
"""(pipeline, stage, UTC day reached, currency)."""
StayKey = tuple[int, int, date, int]
"""(pipeline, stage, UTC day reached, whole days spent)."""
LossKey = tuple[int, int, date, str]
"""(pipeline, stage, UTC day reached, reason)."""


@dataclass(slots=True)
class Tally:
    """What a set of funnel rows adds to the daily sums; rows taken away count negative.

    ``store.funnel.rewrite`` tallies a deal's old rows with -1 and its new ones
    with +1 and adds the difference to the daily tables, so those always equal
    the sums over the rows (a property the tests check).
    """

    days: dict[DayKey, list[Any]] = field(default_factory=dict)
    """[reached, moved on, won, amount] per key."""
    stays: dict[StayKey, int] = field(default_factory=dict)
    losses: dict[LossKey, int] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any], sign: int) -> None:
        day = row["reached_at"].astimezone(UTC).date()
        pipeline, stage = row["pipeline_id"], row["stage_id"]
        cell = self.days.setdefault((pipeline, stage, day, row["currency"]), [0, 0, 0, Decimal(0)])
        cell[0] += sign
        cell[1] += sign if row["moved_on_at"] is not None else 0
        cell[2] += sign if row["won_at"] is not None else 0
        cell[3] += sign * row["amount"]
        if row["moved_on_at"] is not None and not row["skipped"]:
            key = (pipeline, stage, day, whole_days(row["seconds_in"]))
            self.stays[key] = self.stays.get(key, 0) + sign
        if row.get("lost_reason") is not None:
            loss = (pipeline, stage, day, row["lost_reason"])
            self.losses[loss] = self.losses.get(loss, 0) + sign

    def changes(self) -> Tally:
        """Only the keys whose sums move (a rewrite that changes nothing writes nothing)."""
        return Tally(
            {k: v for k, v in self.days.items() if any(v)},
            {k: v for k, v in self.stays.items() if v},
            {k: v for k, v in self.losses.items() if v},
        )
