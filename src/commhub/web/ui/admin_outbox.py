"""Messages in doubt: a crash cut off their hand-over and the gateway could not say.

A manager sees each with its reason and decides: send it again (it did not
go) or dismiss it (it went, or no longer matters).
"""

from __future__ import annotations

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.services import outbox as service
from commhub.web.endpoints import endpoint, path_id
from commhub.web.keys import DATABASE, HUB, principal
from commhub.web.ui import flash
from commhub.web.ui.forms import refusals_shown_at
from commhub.web.ui.render import page

PAGE = "/admin/outbox"
SHOWN = 500


@endpoint(
    "Messages in doubt: cut off mid-hand-over, each to resend or dismiss.",
    permission=Permission.OUTBOX_SETTLE,
    tag="pages",
)
async def outbox_page(request: web.Request) -> web.StreamResponse:
    rows = await service.in_doubt(request.app[DATABASE], limit=SHOWN)
    return await page(request, "admin_outbox.html", section="admin-outbox", rows=rows)


@endpoint("Send a message in doubt again.", permission=Permission.OUTBOX_SETTLE, tag="pages")
async def resend(request: web.Request) -> web.StreamResponse:
    async with refusals_shown_at(PAGE):
        row = await service.resend(
            request.app[DATABASE], path_id(request), user_id=principal(request).user_id
        )
        request.app[HUB].dispatch_now(row.source)
    raise flash.redirect(PAGE, "Queued again: it will be sent once more.")


@endpoint("Dismiss a message in doubt.", permission=Permission.OUTBOX_SETTLE, tag="pages")
async def dismiss(request: web.Request) -> web.StreamResponse:
    async with refusals_shown_at(PAGE):
        await service.dismiss(
            request.app[DATABASE], path_id(request), user_id=principal(request).user_id
        )
    raise flash.redirect(PAGE, "Dismissed: it stays on the card as may have been sent.")
