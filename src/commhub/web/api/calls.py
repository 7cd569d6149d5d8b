"""Calls: click-to-call, the missed-calls follow-up list, calls in progress, channel health."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from commhub.channels import ChannelUnavailable, Telephony
from commhub.domain.pagination import Cursor
from commhub.domain.roles import Permission, Role
from commhub.models import CallRequest, Interaction, MissedCall
from commhub.services import call_log, click_to_call
from commhub.web.api import schemas
from commhub.web.api.contacts import region_of
from commhub.web.api.views import interaction_page
from commhub.web.endpoints import endpoint, json_response, path_id, read_body, read_query
from commhub.web.keys import CHANNELS, DATABASE, HUB, principal
from commhub.web.problems import invalid

IDEMPOTENCY_HEADER = "Idempotency-Key"
NOT_LISTENING = (
    "this process does not own the PBX links (COMMHUB_LISTEN=false): "
    "send /api/v1/calls and /api/v1/live to the process that does"
)


@endpoint(
    "Click-to-call: ring the operator's phone, then dial the contact or number from it. "
    "Answers 202 once the PBX has queued the call; send an Idempotency-Key header to make "
    "a retry dial only once. 503 when the PBX is not connected, 502 when it refuses.",
    permission=Permission.CALLS,
    tag="calls",
    body=schemas.CallCreate,
    response=schemas.CallRequestOut,
    status=202,
)
async def place_call(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.CallCreate)
    caller = principal(request)
    operator_id = body.operator_id or caller.user_id
    if operator_id != caller.user_id and caller.role not in (Role.MANAGER, Role.ADMIN):
        raise invalid("operator_id", "an operator may only ring their own phone")
    request_id = request.headers.get(IDEMPOTENCY_HEADER) or click_to_call.new_request_id()
    if not 1 <= len(request_id) <= 64 or not request_id.isprintable():
        raise invalid(IDEMPOTENCY_HEADER, "1 to 64 printable characters")
    pbxs = configured_pbxs(request)
    call, created = await click_to_call.place_call(
        request.app[DATABASE],
        pbxs,
        pbx=body.pbx,
        request_id=request_id,
        caller_id=caller.user_id,
        operator_id=operator_id,
        contact_id=body.contact_id,
        number=body.number,
        region=region_of(request, body.region),
    )
    return json_response(_request_out(call), status=202 if created else 200)


def configured_pbxs(request: web.Request) -> dict[str, Telephony]:
    """The PBXs this process can place calls through, by name (the service picks one)."""
    pbxs = {n: c for n, c in request.app[CHANNELS].items() if isinstance(c, Telephony)}
    if not pbxs:
        raise ChannelUnavailable("no PBX is configured (COMMHUB_CHANNELS_FILE)")
    if not request.app[HUB].listening:
        raise ChannelUnavailable(NOT_LISTENING)
    return pbxs


def _request_out(call: CallRequest) -> schemas.CallRequestOut:
    return schemas.CallRequestOut(
        id=call.id,
        status=call.status,
        number=call.number,
        extension=call.extension,
        pbx=call.channel_name,
        contact_id=call.contact_id,
        interaction_id=call.interaction_id,
        error=call.error,
        created_at=call.created_at,
    )


@endpoint(
    "Missed calls, newest first: open ones wait for a call back (an answered call with the "
    "same number closes them) or a dismissal.",
    permission=Permission.CALLS,
    tag="calls",
    query=schemas.MissedQuery,
    response=schemas.MissedPage,
)
async def list_missed(request: web.Request) -> web.StreamResponse:
    query = read_query(request, schemas.MissedQuery)
    after = None if query.cursor is None else Cursor.decode(query.cursor)
    rows = await call_log.missed_page(
        request.app[DATABASE],
        state=None if query.state == "all" else query.state,
        operator_id=query.operator_id,
        after=after,
        limit=query.limit,
    )
    next_cursor = None
    if len(rows) == query.limit:
        last = rows[-1][0]
        next_cursor = Cursor(occurred_at=last.occurred_at, id=last.id).encode()
    items = [_missed_out(missed, call) for missed, call in rows]
    return json_response(schemas.MissedPage(items=items, next_cursor=next_cursor))


@endpoint(
    "Dismiss a missed call: it leaves the open list without a call back.",
    permission=Permission.CALLS,
    tag="calls",
    response=schemas.MissedCallOut,
)
async def dismiss_missed(request: web.Request) -> web.StreamResponse:
    missed_id = path_id(request)
    missed, call = await call_log.dismiss_missed(
        request.app[DATABASE], missed_id, principal(request).user_id
    )
    return json_response(_missed_out(missed, call))


def _missed_out(missed: MissedCall, call: Interaction) -> schemas.MissedCallOut:
    return schemas.MissedCallOut(
        id=missed.id,
        state=missed.state,
        number=missed.number,
        contact_id=missed.contact_id,
        occurred_at=missed.occurred_at,
        resolved_at=missed.resolved_at,
        resolved_by_id=missed.resolved_by_id,
        resolved_by_interaction_id=missed.resolved_by_interaction_id,
        call=schemas.InteractionOut.model_validate(call, from_attributes=True),
    )


@endpoint(
    "Calls in progress now (ringing or talking), newest first.",
    permission=Permission.CALLS_WATCH,
    tag="calls",
    response=schemas.InteractionPage,
)
async def live_calls(request: web.Request) -> web.StreamResponse:
    rows = await call_log.live_calls(request.app[DATABASE])
    return json_response(interaction_page(rows, None))


@endpoint(
    "Each PBX, mailbox and gateway: connected, last event, reconnects, last error.",
    permission=Permission.CHANNELS_VIEW,
    tag="channels",
    response=schemas.ChannelList,
)
async def channel_health(request: web.Request) -> web.StreamResponse:
    return json_response(await channel_status(request.app))


async def channel_status(app: web.Application) -> schemas.ChannelList:
    """Every channel's health and the hub's counters: what the API and the console page show.

    A PBX's calls in progress are counted in the log, as ``/calls/live`` lists them, so
    the two views never disagree.
    """
    hub = app[HUB]
    pbxs = [name for name, channel in app[CHANNELS].items() if isinstance(channel, Telephony)]
    in_progress = await call_log.open_call_counts(app[DATABASE], pbxs)
    items = [
        schemas.ChannelHealthOut.model_validate(channel.health(), from_attributes=True)
        for channel in app[CHANNELS].values()
    ]
    for item in items:
        item.calls_in_progress = in_progress.get(item.name)
    return schemas.ChannelList(
        items=items,
        listening=hub.listening,
        **dataclasses.asdict(hub.inbound.health()),
        sms_senders=[
            schemas.SmsSenderOut(
                gateway=name,
                rate=sender.rate or 0.0,
                sent=sender.sent,
                failed=sender.failed,
                retried=sender.retried,
                last_error=sender.last_error,
            )
            for name, sender in hub.dispatchers.items()
            if sender.kind == "sms"
        ],
    )
