"""The home page: the user's day (calls, talk time), missed calls to return, follow-ups due."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from commhub.domain.interactions import Channel
from commhub.domain.roles import Permission
from commhub.store import calls as call_store
from commhub.store import contacts as contact_store
from commhub.store import follow_ups
from commhub.store import interactions as interaction_store
from commhub.store.calls import OPEN
from commhub.store.reports import OperatorResults, operator_results
from commhub.web.endpoints import endpoint
from commhub.web.keys import DATABASE
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
    async with request.app[DATABASE]() as session:
        today = (
            await operator_results(session, since=since, until=until, operator_ids=[user_id])
        ).get(user_id) or OperatorResults(operator_id=user_id)
        missed = await call_store.missed_page(
            session, state=OPEN, operator_id=user_id, after=None, limit=MISSED_SHOWN
        )
        due = await follow_ups.open_for_user(session, user_id)
        calls = await interaction_store.search(
            session,
            interaction_store.InteractionFilter(
                channel=Channel.CALL.value, operator_id=user_id, since=since
            ),
            after=None,
            limit=CALLS_SHOWN,
        )
        names = await contact_store.names_of(
            session, [c.contact_id for c in calls] + [m.contact_id for m, _ in missed]
        )
    return await page(
        request,
        "home.html",
        section="home",
        today=today,
        missed=missed,
        follow_ups=due,
        calls=calls,
        names=names,
        now=me.fmt.now(),
        can_call=me.can(Permission.CALLS),
    )
