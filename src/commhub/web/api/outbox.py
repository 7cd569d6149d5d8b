"""Messages in doubt: the list a manager settles, and the two ways to settle one."""

from __future__ import annotations

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.models import Outbox
from commhub.services import outbox as service
from commhub.web.api import outbox_schemas as schemas
from commhub.web.api.emails import id_cursor
from commhub.web.endpoints import endpoint, json_response, path_id, read_query
from commhub.web.keys import DATABASE, HUB, principal


@endpoint(
    "Outbox messages in one state, newest first. By default the uncertain ones: a crash cut "
    "off their hand-over, the gateway could not say whether it took them, and a person "
    "decides: resend or dismiss.",
    permission=Permission.OUTBOX_SETTLE,
    tag="outbox",
    query=schemas.OutboxQuery,
    response=schemas.OutboxPage,
)
async def list_outbox(request: web.Request) -> web.StreamResponse:
    query = read_query(request, schemas.OutboxQuery)
    rows = await service.listing(
        request.app[DATABASE],
        state=query.state,
        channel=query.channel,
        after_id=id_cursor(query.cursor),
        limit=query.limit,
    )
    next_cursor = str(rows[-1].id) if len(rows) == query.limit else None
    return json_response(schemas.OutboxPage(items=[item(r) for r in rows], next_cursor=next_cursor))


@endpoint(
    "Send an uncertain message again (you judged it did not go). It is queued at once; "
    "anything but an uncertain message answers 409.",
    permission=Permission.OUTBOX_SETTLE,
    tag="outbox",
    response=schemas.OutboxItem,
)
async def resend(request: web.Request) -> web.StreamResponse:
    row = await service.resend(
        request.app[DATABASE], path_id(request), user_id=principal(request).user_id
    )
    out = item(row)
    request.app[HUB].dispatch_now(row.source)
    return json_response(out)


@endpoint(
    "Leave an uncertain message as it is (you judged it went, or it no longer matters): it "
    "leaves the list and its card keeps saying it may have been sent.",
    permission=Permission.OUTBOX_SETTLE,
    tag="outbox",
    response=schemas.OutboxItem,
)
async def dismiss(request: web.Request) -> web.StreamResponse:
    row = await service.dismiss(
        request.app[DATABASE], path_id(request), user_id=principal(request).user_id
    )
    return json_response(item(row))


def item(row: Outbox) -> schemas.OutboxItem:
    return schemas.OutboxItem(
        id=row.id,
        key=row.key,
        channel=row.channel,
        source=row.source,
        state=row.state,
        interaction_id=row.interaction_id,
        contact_id=row.contact_id,
        recipients=list(row.recipients.get("to", [])),
        attempts=row.attempts,
        reason=row.last_error,
        created_at=row.created_at,
        claimed_at=row.claimed_at,
        sent_at=row.sent_at,
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
    )
