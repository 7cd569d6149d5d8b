"""The interaction log: filter it, and record interactions from integrations."""

from __future__ import annotations

from aiohttp import web

from commhub.domain.interactions import InteractionFilter, NewInteraction
from commhub.domain.pagination import Cursor
from commhub.domain.roles import Permission
from commhub.services.interactions import record_reported_interaction
from commhub.services.log import search
from commhub.web.api import schemas
from commhub.web.api.views import interaction_page
from commhub.web.endpoints import endpoint, json_response, read_body, read_query
from commhub.web.keys import DATABASE, SETTINGS, principal


@endpoint(
    "List interactions, newest first, filtered by channel, direction, status, operator, "
    "contact, queue, text in the subject or summary and time range (since inclusive, "
    "until exclusive).",
    permission=Permission.INTERACTIONS_LOG,
    tag="interactions",
    query=schemas.InteractionQuery,
    response=schemas.InteractionPage,
)
async def list_interactions(request: web.Request) -> web.StreamResponse:
    query = read_query(request, schemas.InteractionQuery)
    filters = InteractionFilter(
        channel=None if query.channel is None else query.channel.value,
        direction=None if query.direction is None else query.direction.value,
        status=None if query.status is None else query.status.value,
        operator_id=query.operator_id,
        contact_id=query.contact_id,
        queue=query.queue,
        text=query.text,
        since=query.since,
        until=query.until,
    )
    after = None if query.cursor is None else Cursor.decode(query.cursor)
    found = await search(request.app[DATABASE], filters, after=after, limit=query.limit)
    return json_response(interaction_page(found.rows, found.next_cursor))


@endpoint(
    "Record an interaction (a note, or a call/SMS/e-mail from another system). "
    "Idempotent on (channel, external_id): a repeat returns the first record with 200.",
    permission=Permission.INTERACTIONS_WRITE,
    tag="interactions",
    body=schemas.InteractionCreate,
    response=schemas.InteractionOut,
    status=201,
)
async def create_interaction(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.InteractionCreate)
    new = NewInteraction(**body.model_dump())
    row, created = await record_reported_interaction(
        request.app[DATABASE],
        new,
        caller=principal(request),
        region=request.app[SETTINGS].phone_region,
    )
    out = schemas.InteractionOut.model_validate(row, from_attributes=True)
    return json_response(out, status=201 if created else 200)
