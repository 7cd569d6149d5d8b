"""The interaction log page: every call, SMS, e-mail and note, newest first, filtered."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from commhub.domain.identifiers import parse_id
from commhub.domain.interactions import Direction, InteractionFilter, Medium, Status
from commhub.domain.pagination import Cursor
from commhub.domain.roles import Permission
from commhub.services.log import log_page
from commhub.web.endpoints import endpoint
from commhub.web.keys import DATABASE
from commhub.web.ui.log_export import EXPORT_LIMIT
from commhub.web.ui.log_filters import (
    FilterError,
    cursor_from,
    filters_from,
    form_values,
    link,
)
from commhub.web.ui.render import page, translate, viewer

PAGE_SIZE: Final = 50
STATUS_CHOICES: Final = tuple(s.value for s in Status)


@endpoint(
    "Interaction log: every interaction, newest first, with filters and export links.",
    permission=Permission.INTERACTIONS_LOG,
    tag="pages",
)
async def interaction_log(request: web.Request) -> web.StreamResponse:
    me = await viewer(request)
    values = form_values(request.query)
    may_export = me.can(Permission.INTERACTIONS_EXPORT)
    error: str | None = None
    filters: InteractionFilter | None
    after: Cursor | None
    try:
        filters = filters_from(values, me.fmt.zone, me.fmt.region)
        after = cursor_from(request.query.get("cursor"))
    except FilterError as exc:
        error = translate(me.language, exc.message, **exc.values)
        filters, after = None, None  # the page says what is wrong and lists nothing
    found = await log_page(
        request.app[DATABASE],
        filters,
        after=after,
        limit=PAGE_SIZE,
        named_contact=parse_id(values["contact_id"]),
        export_limit=EXPORT_LIMIT if may_export else None,
    )
    following = found.next_cursor
    next_link = "" if following is None else link("/log", values, cursor=following.encode())
    return await page(
        request,
        "log.html",
        status=422 if error else 200,
        section="log",
        values=values,
        error=error,
        rows=found.rows,
        names=found.contact_names,
        operators=found.operators,
        channels=[c.value for c in Medium],
        directions=[d.value for d in Direction],
        statuses=STATUS_CHOICES,
        first_page_link=link("/log", values) if request.query.get("cursor") else "",
        next_link=next_link,
        clear_contact_link=link("/log", {**values, "contact_id": ""}),
        export_csv=link("/log/export.csv", values) if may_export else "",
        export_xlsx=link("/log/export.xlsx", values) if may_export else "",
        capped=found.capped,
        export_limit=EXPORT_LIMIT,
    )
