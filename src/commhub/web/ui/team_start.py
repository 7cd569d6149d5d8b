"""The manager's part of the home page: the team's funnel, each person's done against owed,
and each source's deals; every figure a link to the list behind it.

The links use the lists' own filters: the deals list (owner, state, the days a
deal was opened or closed, an overdue next step, the funnel's drill-down) and
the interaction log (operator, channel, direction, status, days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

from aiohttp import web

from commhub.services import start_page
from commhub.services.start_page import PersonFigures, SourceFigures, StartPage
from commhub.web.keys import DATABASE
from commhub.web.ui import periods
from commhub.web.ui.funnel_page import SOURCE_LABELS, Asked, deals_link
from commhub.web.ui.i18n import translations
from commhub.web.ui.render import Viewer
from commhub.web.ui.stage_names import stage_name


@dataclass(frozen=True, slots=True)
class FunnelLine:
    name: str
    kind: str
    reached: int
    to_next: object
    link: str


@dataclass(frozen=True, slots=True)
class Team:
    period: periods.Period
    figures: StartPage
    funnel: list[FunnelLine]
    links: dict[int, dict[str, str]]
    """Per person: the list behind each figure."""
    source_links: dict[str, dict[str, str]]
    source_labels: dict[str, str]


def _link(path: str, **params: object) -> str:
    return f"{path}?{urlencode({k: str(v) for k, v in params.items() if v is not None})}"


def _person_links(person: PersonFigures, first: date, last: date) -> dict[str, str]:
    days = {"from": first.isoformat(), "to": last.isoformat()}
    closed = {"closed_from": first.isoformat(), "closed_to": last.isoformat()}
    return {
        "calls": _link("/log", operator_id=person.user_id, channel="call", **days),
        "messages": _link("/log", operator_id=person.user_id, direction="out", **days),
        "won": _link("/deals", owner=person.user_id, state="won", **closed),
        "overdue_steps": _link("/deals", owner=person.user_id, overdue=1),
        "emails_waiting": f"/reports/emails-waiting/{person.user_id}",
        "missed_open": _link(
            "/log", operator_id=person.user_id, channel="call", status="missed", **days
        ),
    }


def _source_links(source: SourceFigures, first: date, last: date) -> dict[str, str]:
    return {
        "opened": _link(
            "/deals",
            source=source.source,
            created_from=first.isoformat(),
            created_to=last.isoformat(),
        ),
        "won": _link(
            "/deals",
            source=source.source,
            state="won",
            closed_from=first.isoformat(),
            closed_to=last.isoformat(),
        ),
    }


async def team(request: web.Request, me: Viewer) -> Team:
    """The team's figures for the period the home page's query names (this month unless)."""
    try:
        period = periods.resolve(
            request.query.get("period") or periods.THIS_MONTH,
            request.query.get("from"),
            request.query.get("to"),
            today=me.fmt.now().date(),
            zone=me.fmt.zone,
        )
    except periods.PeriodError:
        period = periods.resolve(
            periods.THIS_MONTH, None, None, today=me.fmt.now().date(), zone=me.fmt.zone
        )
    figures = await start_page.start_page(
        request.app[DATABASE],
        since=period.since,
        until=period.until,
        today=me.fmt.now().date(),
    )
    gettext = translations(me.language).gettext
    lines = []
    if figures.funnel is not None:
        report = figures.funnel
        asked = Asked(period, report.pipeline.id, None, None)
        lines = [
            FunnelLine(
                stage_name(report.stages[s.stage_id], gettext),
                s.kind.value,
                s.reached,
                s.to_next,
                deals_link(asked, report.pipeline.id, s.stage_id, "reached"),
            )
            for s in report.funnel.stages
        ]
    return Team(
        period=period,
        figures=figures,
        funnel=lines,
        links={p.user_id: _person_links(p, period.first, period.last) for p in figures.people},
        source_links={
            s.source: _source_links(s, period.first, period.last) for s in figures.sources
        },
        source_labels=dict(SOURCE_LABELS),
    )
