"""What an admin or manager looks after: mail that could not be filed, suppressed addresses."""

from __future__ import annotations

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.models import MailFailure
from commhub.services import email_triage
from commhub.web.api import email_schemas as schemas
from commhub.web.api.emails import id_cursor
from commhub.web.endpoints import endpoint, json_response, path_id, read_query
from commhub.web.keys import DATABASE


@endpoint(
    "Messages that could not be filed (unreadable MIME, refused by the store), kept raw "
    "with the reason; newest first.",
    permission=Permission.MAIL_FAILURES,
    tag="email",
    query=schemas.PageQuery,
    response=schemas.MailFailurePage,
)
async def list_failures(request: web.Request) -> web.StreamResponse:
    query = read_query(request, schemas.PageQuery)
    rows = await email_triage.failures(
        request.app[DATABASE], after_id=id_cursor(query.cursor), limit=query.limit
    )
    items = [_failure_out(row) for row in rows]
    next_cursor = str(rows[-1].id) if len(rows) == query.limit else None
    return json_response(schemas.MailFailurePage(items=items, next_cursor=next_cursor))


@endpoint(
    "The raw bytes of a message that could not be filed.",
    permission=Permission.MAIL_FAILURES,
    tag="email",
    content_type="application/octet-stream",
)
async def get_failure_raw(request: web.Request) -> web.StreamResponse:
    row = await email_triage.failure(request.app[DATABASE], path_id(request))
    return web.Response(
        body=row.raw,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="failure-{row.id}.eml"'},
    )


@endpoint(
    "Mark an unfiled message as dealt with: it leaves the failures list.",
    permission=Permission.MAIL_FAILURES,
    tag="email",
    response=schemas.MailFailureOut,
)
async def resolve_failure(request: web.Request) -> web.StreamResponse:
    row = await email_triage.resolve_failure(request.app[DATABASE], path_id(request))
    return json_response(_failure_out(row))


def _failure_out(row: MailFailure) -> schemas.MailFailureOut:
    return schemas.MailFailureOut(
        id=row.id,
        mailbox=row.source,
        folder=row.folder,
        uid=row.uid,
        error=row.error,
        size=row.size,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
    )


@endpoint(
    "Addresses no message may go to (hard bounces, opt-outs), with the reason and source.",
    permission=Permission.SUPPRESSIONS,
    tag="email",
    query=schemas.SuppressionQuery,
    response=schemas.SuppressionPage,
)
async def list_suppressions(request: web.Request) -> web.StreamResponse:
    query = read_query(request, schemas.SuppressionQuery)
    rows = await email_triage.suppressions(
        request.app[DATABASE],
        channel=query.channel,
        address=query.address,
        after_id=id_cursor(query.cursor),
        limit=query.limit,
    )
    items = [schemas.SuppressionOut.model_validate(row, from_attributes=True) for row in rows]
    next_cursor = str(rows[-1].id) if len(rows) == query.limit else None
    return json_response(schemas.SuppressionPage(items=items, next_cursor=next_cursor))


@endpoint(
    "Lift a suppression: messages may go to the address again.",
    permission=Permission.SUPPRESSIONS,
    tag="email",
    status=204,
)
async def lift_suppression(request: web.Request) -> web.StreamResponse:
    await email_triage.lift(request.app[DATABASE], path_id(request))
    return web.Response(status=204)
