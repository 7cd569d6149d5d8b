"""Latency samples and their summary, shared by the benchmarks under bench/.

Every benchmark times the code under test beside a raw-SQL baseline in the
same process, on the same session, interleaved call by call, so that cache
warmth and machine noise hit both sides alike; the ratio is the figure that
travels between machines.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")


@dataclass
class Samples:
    """Per-call durations of one measured operation, in nanoseconds."""

    name: str
    durations_ns: list[int] = field(default_factory=list)

    async def time(self, call: Callable[[], Awaitable[T]]) -> T:
        """Await ``call()`` once and keep how long it took."""
        start = time.perf_counter_ns()
        result = await call()
        self.durations_ns.append(time.perf_counter_ns() - start)
        return result

    def percentile_ms(self, fraction: float) -> float:
        """Nearest-rank percentile (``fraction`` in 0..1), in milliseconds."""
        ordered = sorted(self.durations_ns)
        if not ordered:
            return math.nan
        rank = max(1, math.ceil(fraction * len(ordered)))
        return ordered[rank - 1] / 1e6


@dataclass(frozen=True, slots=True)
class Comparison:
    """The code under test against its baseline, with the target it must meet."""

    label: str
    measured: Samples
    baseline: Samples
    target_p99_ms: float
    max_ratio: float | None = None

    def line(self) -> str:
        p50, p99 = self.measured.percentile_ms(0.5), self.measured.percentile_ms(0.99)
        b50, b99 = self.baseline.percentile_ms(0.5), self.baseline.percentile_ms(0.99)
        ratio = p99 / b99 if b99 else math.inf
        verdict = "ok" if self.met() else "MISSED"
        ratio_target = f" (<= {self.max_ratio:g}x)" if self.max_ratio is not None else ""
        return (
            f"{self.label:<40} n={len(self.measured.durations_ns):>6}  "
            f"{self.measured.name} p50 {p50:6.3f} ms p99 {p99:6.3f} ms | "
            f"{self.baseline.name} p50 {b50:6.3f} ms p99 {b99:6.3f} ms | "
            f"ratio p50 {p50 / b50 if b50 else math.inf:4.2f}x p99 {ratio:4.2f}x{ratio_target}  "
            f"target p99 <= {self.target_p99_ms:g} ms: {verdict}"
        )

    def met(self) -> bool:
        p99 = self.measured.percentile_ms(0.99)
        if p99 > self.target_p99_ms:
            return False
        if self.max_ratio is None:
            return True
        return p99 <= self.max_ratio * self.baseline.percentile_ms(0.99)


def report(results: Sequence[Comparison]) -> None:
    """Print the machine's load (a tail the baseline shows too is the machine's) and each line."""
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"  machine load average (1/5/15 min) after the run: {load}")
    for result in results:
        print(f"  {result.line()}")


async def interleaved(
    measured: Samples,
    baseline: Samples,
    measured_call: Callable[[], Awaitable[T]],
    baseline_call: Callable[[], Awaitable[U]],
    *,
    turn: int,
) -> tuple[T, U]:
    """Time one call of each side, alternating which goes first with ``turn``; their results."""
    if turn % 2:
        second = await baseline.time(baseline_call)
        first = await measured.time(measured_call)
    else:
        first = await measured.time(measured_call)
        second = await baseline.time(baseline_call)
    return first, second
