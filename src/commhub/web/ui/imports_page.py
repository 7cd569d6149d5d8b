"""The imports page: the latest imports, the queue's order, and cancel / resume / restart."""

from __future__ import annotations

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.services import import_control
from commhub.web.endpoints import endpoint, path_id
from commhub.web.keys import DATABASE, JOBS, principal
from commhub.web.ui import flash
from commhub.web.ui.forms import read_form, refusals_shown_at
from commhub.web.ui.render import page

PAGE = "/imports"


@endpoint(
    "Imports: status, place in the queue, counters, and the actions each one allows.",
    permission=Permission.CONTACTS_IMPORT,
    tag="pages",
)
async def imports_page(request: web.Request) -> web.StreamResponse:
    views = await import_control.recent(request.app[DATABASE])
    return await page(request, "imports.html", section="imports", imports=views)


@endpoint(
    "Cancel an import from the imports page.", permission=Permission.CONTACTS_IMPORT, tag="pages"
)
async def cancel_import(request: web.Request) -> web.StreamResponse:
    import_id = path_id(request)
    await read_form(request)
    async with refusals_shown_at(PAGE):
        found = await import_control.cancel(
            request.app[DATABASE], import_id, who=principal(request).username
        )
    raise flash.redirect(
        PAGE,
        "Import %(id)s cancelled; the %(rows)s rows imported before stay.",
        id=import_id,
        rows=found.row.rows_done,
    )


@endpoint(
    "Resume an import from the imports page.", permission=Permission.CONTACTS_IMPORT, tag="pages"
)
async def resume_import(request: web.Request) -> web.StreamResponse:
    return await _requeue(request, restart=False)


@endpoint(
    "Restart an import from the imports page.", permission=Permission.CONTACTS_IMPORT, tag="pages"
)
async def restart_import(request: web.Request) -> web.StreamResponse:
    return await _requeue(request, restart=True)


async def _requeue(request: web.Request, *, restart: bool) -> web.StreamResponse:
    import_id = path_id(request)
    await read_form(request)
    async with refusals_shown_at(PAGE):
        await import_control.queue_again(
            request.app[DATABASE], request.app[JOBS], import_id, restart=restart
        )
    raise flash.redirect(PAGE, "Import %(id)s is queued again.", id=import_id)
