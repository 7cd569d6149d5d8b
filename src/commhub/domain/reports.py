"""Per-operator results over a period, as values: what the home page and the dashboard show.

The figures are counted in ``store/reports.py``; here is what they are and how
several add up, so the operator's own figures and the manager's table agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Final

NOBODY: Final = 0
"""The key of what no operator handled: calls that rang nobody (an IVR hang-up, a queue
with no agent logged in), messages sent by integrations without a user."""


@dataclass(frozen=True, slots=True)
class OperatorResults:
    """What one operator did in a period.

    ``missed`` counts inbound calls that rang them and nobody answered;
    ``missed_open`` those of them still waiting for a call back. ``timed``
    counts the answered calls whose talk time is known (the ended ones): a
    call still in progress must not pull the average down.
    """

    operator_id: int
    calls_in: int = 0
    calls_out: int = 0
    answered: int = 0
    missed: int = 0
    talk_s: int = 0
    sms_sent: int = 0
    emails_sent: int = 0
    missed_open: int = 0
    timed: int = 0

    @property
    def average_handling_s(self) -> float | None:
        """Mean talk time of the ended answered calls, in or out."""
        return self.talk_s / self.timed if self.timed else None


def team_total(results: Iterable[OperatorResults]) -> OperatorResults:
    """The sum of several operators' results (``operator_id`` 0: nobody in particular)."""
    total = OperatorResults(operator_id=0)
    for item in results:
        total = OperatorResults(
            operator_id=0,
            **{name: getattr(total, name) + getattr(item, name) for name in _COUNTS},
        )
    return total


_COUNTS: Final = tuple(f.name for f in fields(OperatorResults) if f.name != "operator_id")
