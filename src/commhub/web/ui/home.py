"""The home page: the user's day (calls, talk time), missed calls to return, follow-ups due;
for managers, first the team's start page (``team_start``)."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.services import reports
from commhub.web.endpoints import endpoint
from commhub.web.keys import DATABASE
from commhub.web.ui import periods, team_start
from commhub.web.ui.deal_values import money
from commhub.web.ui.render import page, viewer

MISSED_SHOWN = 20
CALLS_SHOWN = 30


@endpoint(
    "Home page: the user's calls today, missed calls, follow-ups.",
    permission=Permission.SESSION,
    tag="pages",
)
async def home(request: web.Request) -> web.StreamResponse:
    me = await viewer(request)
    since = me.fmt.days_ago(0)
    until = since + timedelta(days=1)
    user_id = me.user.id
    day = await reports.day_of(
        request.app[DATABASE],
        user_id,
        since=since,
        until=until,
        missed_shown=MISSED_SHOWN,
        calls_shown=CALLS_SHOWN,
    )
    return await page(
        request,
        "home.html",
        team=await team_start.team(request, me) if me.can(Permission.FUNNEL) else None,
        period_choices=periods.CHOICES,
        money_of=lambda m: money(m.amount, m.currency, me.language),
        section="home",
        today=day.results,
        missed=day.missed,
        follow_ups=day.follow_ups,
        calls=day.calls,
        names=day.names,
        now=me.fmt.now(),
        can_call=me.can(Permission.CALLS),
    )
