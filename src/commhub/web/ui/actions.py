"""Buttons found on several pages: call a number back, dismiss a missed call, finish a follow-up."""

from __future__ import annotations

from aiohttp import web

from commhub.domain.identifiers import parse_id
from commhub.domain.roles import Permission
from commhub.services import call_log, click_to_call, follow_ups
from commhub.services.errors import NotFound
from commhub.web.api.calls import configured_pbxs
from commhub.web.endpoints import endpoint, path_id
from commhub.web.keys import DATABASE, SETTINGS, principal
from commhub.web.ui import flash
from commhub.web.ui.forms import back_to, read_form, refusals_shown_at


@endpoint(
    "Click-to-call from a page: ring my phone, then dial.", permission=Permission.CALLS, tag="pages"
)
async def place_call(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    back = back_to(request, "/")
    contact = form.get("contact_id", "")
    number = form.get("number", "").strip() or None
    # One id per rendered button: a double click on the same page dials once.
    request_id = form.get("request_id") or click_to_call.new_request_id()
    async with refusals_shown_at(back):
        contact_id = parse_id(contact)
        if not number and contact_id is None:
            raise flash.redirect(back, "Give a number to call.", kind="error")
        pbxs = configured_pbxs(request)
        # The PBX is the one that rings the operator's extension: a page never names it.
        call, _created = await click_to_call.place_call(
            request.app[DATABASE],
            pbxs,
            pbx=None,
            request_id=request_id[:64],
            caller_id=principal(request).user_id,
            operator_id=principal(request).user_id,
            contact_id=contact_id,
            number=number,
            region=request.app[SETTINGS].phone_region,
        )
    raise flash.redirect(
        back,
        "Calling %(number)s: pick up your phone (extension %(extension)s).",
        number=call.number,
        extension=call.extension,
    )


@endpoint("Dismiss a missed call from a page.", permission=Permission.CALLS, tag="pages")
async def dismiss_missed(request: web.Request) -> web.StreamResponse:
    missed_id = path_id(request)
    back = back_to(request, "/")
    try:
        await call_log.dismiss_missed(request.app[DATABASE], missed_id, principal(request).user_id)
    except NotFound:
        raise flash.redirect(back, "That missed call is gone.", kind="error") from None
    raise flash.redirect(back, "Missed call dismissed.")


@endpoint("Mark a follow-up done.", permission=Permission.INTERACTIONS_WRITE, tag="pages")
async def follow_up_done(request: web.Request) -> web.StreamResponse:
    follow_up_id = path_id(request)
    back = back_to(request, "/")
    try:
        await follow_ups.complete(request.app[DATABASE], follow_up_id, principal(request).user_id)
    except NotFound:
        raise flash.redirect(back, "That follow-up is gone.", kind="error") from None
    raise flash.redirect(back, "Follow-up done.")
