"""The deals list: filters, sort, paging, and a mass change of owner or stage.

The funnel report links here with its drill-down query (``reached``,
``outcome``, ``from``, ``to``); the days are the viewer's, as on the report.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

from aiohttp import web

from commhub.domain.contacts import FieldError
from commhub.domain.identifiers import parse_id
from commhub.domain.roles import Permission
from commhub.services import deal_console, deals
from commhub.services.deal_console import SORTS
from commhub.services.errors import Forbidden, InvalidInput, NotFound
from commhub.web.endpoints import endpoint
from commhub.web.keys import DATABASE, FEED, principal
from commhub.web.ui import flash
from commhub.web.ui.deal_values import SOURCES, STATES, deal_filter, money, read_id
from commhub.web.ui.forms import back_to, read_form
from commhub.web.ui.render import page, viewer

PAGE: Final = 50
FIELDS: Final = (
    "pipeline",
    "stage",
    "owner",
    "source",
    "state",
    "q",
    "overdue",
    "reached",
    "outcome",
    "from",
    "to",
    "sort",
    "order",
)


@endpoint("The deals list.", permission=Permission.DEALS, tag="pages")
async def deals_page(request: web.Request) -> web.StreamResponse:
    me = await viewer(request)
    query = {name: request.query.get(name, "").strip()[:200] for name in FIELDS}
    sort = query["sort"] if query["sort"] in SORTS else "updated"
    error = ""
    actor = deals.actor(me.user.id, me.role)
    offset = parse_id(request.query.get("offset", "").strip()) or 0
    try:
        which = deal_filter(query, me.fmt.zone, me.fmt.now().date())
    except InvalidInput as exc:
        error = f"{exc.field}: {exc}"
        which = deal_filter({}, me.fmt.zone, me.fmt.now().date())
    screen = await deal_console.list_screen(
        request.app[DATABASE],
        which,
        actor,
        sort=sort,
        descending=query["order"] != "asc",
        offset=offset,
        limit=PAGE,
    )
    kept = [(k, v) for k, v in query.items() if v]
    return await page(
        request,
        "deals.html",
        section="deals",
        query=query,
        error=error,
        found=screen.found,
        choices=screen.choices,
        sorts=list(SORTS),
        sources=SOURCES,
        states=STATES,
        offset=offset,
        limit=PAGE,
        previous_url=_page_url(kept, offset - PAGE) if offset > 0 else "",
        next_url=(_page_url(kept, offset + PAGE) if offset + PAGE < screen.found.total else ""),
        money=lambda amount, currency: money(amount, currency, me.language),
        can_all=me.can(Permission.DEALS_ALL),
    )


def _page_url(kept: list[tuple[str, str]], offset: int) -> str:
    return f"/deals?{urlencode([*kept, ('offset', str(max(offset, 0)))])}"


@endpoint(
    "Give the selected deals an owner or move them to a stage.",
    permission=Permission.DEALS,
    tag="pages",
)
async def mass_change(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    posted = await request.post()
    back = back_to(request, "/deals")
    caller = principal(request)
    ids = [read_id(str(v), "ids") for v in posted.getall("ids", [])]
    try:
        owner = form.get("owner_id", "").strip()
        stage = read_id(form.get("stage_id", ""), "stage_id")
        if not owner and stage is None:
            raise InvalidInput("owner_id", "choose an owner or a stage")
        changes: dict[str, int | None] = {}
        if owner:
            changes["owner_id"] = None if owner == "none" else read_id(owner, "owner_id")
        if stage is not None:
            changes["stage_id"] = stage
        done = await deals.mass_change(
            request.app[DATABASE],
            [i for i in ids if i is not None],
            deals.actor(caller.user_id, caller.role),
            feed=request.app[FEED],
            **changes,
        )
    except (InvalidInput, FieldError, Forbidden, NotFound) as exc:
        raise flash.redirect(back, "Not done: %(reason)s", kind="error", reason=exc) from None
    raise flash.redirect(back, "%(count)s deals changed.", count=done)
