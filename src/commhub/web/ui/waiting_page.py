"""E-mails waiting for an answer on one person's cards: the list behind the start page's
"owed" figure, the longest waiting first."""

from __future__ import annotations

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.services import start_page
from commhub.web.endpoints import endpoint, path_id
from commhub.web.keys import DATABASE
from commhub.web.ui.render import page


@endpoint(
    "E-mails on a person's cards that no e-mail has answered yet (last 30 days).",
    permission=Permission.FUNNEL,
    tag="pages",
)
async def emails_waiting(request: web.Request) -> web.StreamResponse:
    waiting = await start_page.emails_waiting(request.app[DATABASE], path_id(request))
    return await page(
        request,
        "emails_waiting.html",
        section="home",
        waiting=waiting,
        days=start_page.WAITING_DAYS,
    )
