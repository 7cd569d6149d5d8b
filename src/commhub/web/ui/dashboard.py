"""The manager's dashboard: each operator's calls, talk time and messages over a period.

Rows are every active user who takes calls (operators, and anyone with an
extension), with zeros where they did nothing, plus anyone else who handled
something in the period, so the totals row is the sum of the rows shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from commhub.domain.reports import NOBODY, OperatorResults, team_total
from commhub.domain.roles import Permission, Role
from commhub.models import User
from commhub.services import reports
from commhub.web.endpoints import endpoint
from commhub.web.keys import DATABASE
from commhub.web.ui import periods
from commhub.web.ui.charts import BarChart, grouped_bars
from commhub.web.ui.render import page, translate, viewer

CHART_SERIES: Final = ("in", "out", "missed")
"""The chart's bars per operator: calls in, calls out, missed calls (also CSS ``bar-*``)."""


@dataclass(frozen=True, slots=True)
class OperatorRow:
    user_id: int
    name: str
    results: OperatorResults


def operators_shown(users: Sequence[User], results: dict[int, OperatorResults]) -> list[User]:
    """Who gets a row: active call takers, and whoever has results in the period."""
    return sorted(
        (
            user
            for user in users
            if user.id in results
            or (user.active and (user.role == Role.OPERATOR.value or user.extension))
        ),
        key=lambda user: (user.shown_name.casefold(), user.id),
    )


def chart_of(rows: Sequence[OperatorRow]) -> BarChart:
    return grouped_bars(
        [
            (
                row.user_id,
                row.name,
                (row.results.calls_in, row.results.calls_out, row.results.missed),
            )
            for row in rows
        ],
        CHART_SERIES,
    )


@endpoint(
    "Dashboard: each operator's calls, talk time, messages and missed calls over a period.",
    permission=Permission.TEAM_RESULTS,
    tag="pages",
)
async def dashboard(request: web.Request) -> web.StreamResponse:
    me = await viewer(request)
    query = request.query
    chosen = query.get("period") or periods.TODAY
    try:
        period = periods.resolve(
            chosen,
            query.get("from"),
            query.get("to"),
            today=me.fmt.now().date(),
            zone=me.fmt.zone,
        )
    except periods.PeriodError as error:
        return await page(
            request,
            "dashboard.html",
            status=400,
            section="dashboard",
            choices=periods.CHOICES,
            chosen=chosen,
            start=query.get("from", ""),
            end=query.get("to", ""),
            error=error,
            period=None,
            shown_first=None,
            shown_last=None,
            rows=[],
            total=None,
            chart=None,
        )
    team = await reports.team_results(request.app[DATABASE], since=period.since, until=period.until)
    results, users = team.results, team.users
    rows = [
        OperatorRow(
            user_id=user.id,
            name=user.shown_name,
            results=results.get(user.id) or OperatorResults(operator_id=user.id),
        )
        for user in operators_shown(users, results)
    ]
    unhandled = results.get(NOBODY)
    if unhandled is not None:
        # Calls that rang nobody still count: a manager must see them, and the total with them.
        name = translate(me.language, "No operator (rang nobody)")
        rows.append(OperatorRow(user_id=NOBODY, name=name, results=unhandled))
    return await page(
        request,
        "dashboard.html",
        section="dashboard",
        choices=periods.CHOICES,
        chosen=period.key,
        start=period.first.isoformat(),
        end=period.last.isoformat(),
        error=None,
        period=period,
        shown_first=period.since,
        shown_last=periods.local_midnight(period.last, me.fmt.zone),
        rows=rows,
        total=team_total(row.results for row in rows),
        chart=chart_of(rows),
    )
