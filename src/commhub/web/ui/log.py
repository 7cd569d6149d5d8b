"""The interaction log page: every call, SMS, e-mail and note, newest first, filtered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aiohttp import web

from commhub.domain.identifiers import parse_id
from commhub.domain.interactions import Channel, Direction, Status
from commhub.domain.roles import Permission
from commhub.models import Interaction
from commhub.store import contacts as contact_store
from commhub.store import interactions as store
from commhub.store import users as user_store
from commhub.web.endpoints import endpoint
from commhub.web.keys import DATABASE
from commhub.web.ui.log_export import EXPORT_LIMIT, operator_names
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
    rows: Sequence[Interaction] = ()
    names: dict[int, str] = {}
    next_link = ""
    capped = False
    async with request.app[DATABASE]() as session:
        people = await user_store.all_users(session)
        try:
            filters = filters_from(values, me.fmt.zone, me.fmt.region)
            after = cursor_from(request.query.get("cursor"))
        except FilterError as exc:
            error = translate(me.language, exc.message, **exc.values)
        else:
            rows = await store.search(session, filters, after=after, limit=PAGE_SIZE)
            following = store.cursor_after(rows, PAGE_SIZE)
            if following is not None:
                next_link = link("/log", values, cursor=following.encode())
            # Only a full first page can hide more rows than an export holds.
            capped = (
                may_export
                and after is None
                and following is not None
                and await store.more_than(session, filters, EXPORT_LIMIT)
            )
        names = await contact_store.names_of(
            session, [row.contact_id for row in rows] + [_number(values["contact_id"])]
        )
    return await page(
        request,
        "log.html",
        status=422 if error else 200,
        section="log",
        values=values,
        error=error,
        rows=rows,
        names=names,
        operators=operator_names(people),
        channels=[c.value for c in Channel],
        directions=[d.value for d in Direction],
        statuses=STATUS_CHOICES,
        first_page_link=link("/log", values) if request.query.get("cursor") else "",
        next_link=next_link,
        clear_contact_link=link("/log", {**values, "contact_id": ""}),
        export_csv=link("/log/export.csv", values) if may_export else "",
        export_xlsx=link("/log/export.xlsx", values) if may_export else "",
        capped=capped,
        export_limit=EXPORT_LIMIT,
    )


def _number(text: str) -> int | None:
    return parse_id(text)
