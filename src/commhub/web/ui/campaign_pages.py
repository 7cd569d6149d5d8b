"""Campaigns in the console: the list, the form to set one up, and the buttons that run it.

The form goes through the same service as the API (``services.campaigns``):
a refused value comes back as the same form (422) with the message next to
its field, in the user's language, and everything as typed. Start, pause,
resume and cancel are small POST forms (with the session's CSRF token) that
redirect back to the campaign's page saying what happened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from commhub.domain.campaigns import EDITABLE, CampaignError, CampaignState
from commhub.domain.roles import Permission
from commhub.services import campaigns, message_templates, segments
from commhub.services.errors import Conflict, InvalidInput
from commhub.web.api.campaigns import senders
from commhub.web.endpoints import endpoint, path_id
from commhub.web.keys import DATABASE, HUB, SETTINGS, principal
from commhub.web.ui import flash
from commhub.web.ui.campaign_form import (
    FIELDS,
    Choices,
    FormError,
    changes_of,
    draft_from,
    refusal,
    typed_from,
)
from commhub.web.ui.forms import Form, read_form
from commhub.web.ui.i18n import N_
from commhub.web.ui.render import page, viewer

STATES: Final = tuple(state.value for state in CampaignState)


@endpoint(
    "Campaigns, newest first, with their state and how far they got.",
    permission=Permission.CAMPAIGN_RESULTS,
    tag="pages",
)
async def campaigns_page(request: web.Request) -> web.StreamResponse:
    state = request.query.get("state", "")
    chosen = state if state in STATES else None
    rows = await campaigns.console_listing(request.app[DATABASE], state=chosen)
    return await page(
        request,
        "campaigns.html",
        section="campaigns",
        rows=rows,
        state=chosen or "",
        states=STATES,
    )


@endpoint("The form for a new campaign.", permission=Permission.CAMPAIGNS, tag="pages")
async def new_campaign_form(request: web.Request) -> web.StreamResponse:
    return await _form_view(request, None, typed={})


@endpoint("Save a new campaign from the form.", permission=Permission.CAMPAIGNS, tag="pages")
async def create_campaign(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    me = await viewer(request)
    try:
        draft = draft_from(form, me.fmt.zone)
        row = await campaigns.create(
            request.app[DATABASE], draft, user_id=principal(request).user_id
        )
    except FormError as exc:
        return await _refused(request, None, form, exc.field, exc.message)
    except (InvalidInput, Conflict) as exc:
        return await _refused(request, None, form, exc.field, str(exc))
    raise flash.redirect(f"/campaigns/{row.id}", "Campaign saved.")


@endpoint(
    "The form to change a draft or scheduled campaign.",
    permission=Permission.CAMPAIGNS,
    tag="pages",
)
async def edit_campaign_form(request: web.Request) -> web.StreamResponse:
    campaign_id = path_id(request)
    me = await viewer(request)
    row = await campaigns.get(request.app[DATABASE], campaign_id)
    _editable_or_back(row.state, campaign_id)
    return await _form_view(request, campaign_id, typed=typed_from(row, me.fmt.zone))


@endpoint(
    "Save the changes to a draft or scheduled campaign.",
    permission=Permission.CAMPAIGNS,
    tag="pages",
)
async def save_campaign(request: web.Request) -> web.StreamResponse:
    campaign_id = path_id(request)
    form = await read_form(request)
    me = await viewer(request)
    row = await campaigns.get(request.app[DATABASE], campaign_id)
    _editable_or_back(row.state, campaign_id)
    try:
        draft = draft_from(form, me.fmt.zone)
        await campaigns.update_draft(request.app[DATABASE], campaign_id, changes_of(draft))
    except FormError as exc:
        return await _refused(request, campaign_id, form, exc.field, exc.message)
    except (InvalidInput, Conflict) as exc:
        return await _refused(request, campaign_id, form, exc.field, str(exc))
    raise flash.redirect(f"/campaigns/{campaign_id}", "Campaign saved.")


@endpoint("Start a campaign from its page.", permission=Permission.CAMPAIGNS, tag="pages")
async def start_campaign(request: web.Request) -> web.StreamResponse:
    campaign_id = path_id(request)
    await read_form(request)

    async def start() -> None:
        await campaigns.start(
            request.app[DATABASE],
            campaign_id,
            senders(request),
            public_url=request.app[SETTINGS].public_url or str(request.url.origin()),
        )
        request.app[HUB].keep_campaigns_now()

    return await _act(request, campaign_id, start, N_("Campaign started."))


@endpoint("Pause a running campaign from its page.", permission=Permission.CAMPAIGNS, tag="pages")
async def pause_campaign(request: web.Request) -> web.StreamResponse:
    campaign_id = path_id(request)
    form = await read_form(request)

    async def pause() -> None:
        reason = form.get("reason", "").strip()[:500]
        await campaigns.pause(request.app[DATABASE], campaign_id, reason=reason)

    return await _act(request, campaign_id, pause, N_("Campaign paused."))


@endpoint("Resume a paused campaign from its page.", permission=Permission.CAMPAIGNS, tag="pages")
async def resume_campaign(request: web.Request) -> web.StreamResponse:
    campaign_id = path_id(request)
    await read_form(request)

    async def resume() -> None:
        await campaigns.resume(request.app[DATABASE], campaign_id)
        request.app[HUB].keep_campaigns_now()

    return await _act(request, campaign_id, resume, N_("Campaign resumed."))


@endpoint("Cancel a campaign from its page.", permission=Permission.CAMPAIGNS, tag="pages")
async def cancel_campaign(request: web.Request) -> web.StreamResponse:
    campaign_id = path_id(request)
    await read_form(request)

    async def cancel() -> None:
        await campaigns.cancel(request.app[DATABASE], campaign_id)

    return await _act(request, campaign_id, cancel, N_("Campaign cancelled."))


async def _act(
    request: web.Request, campaign_id: int, action: Callable[[], Awaitable[None]], done: str
) -> web.StreamResponse:
    """Run ``action``; back to the campaign's page saying it was done, or why not."""
    me = await viewer(request)
    back = f"/campaigns/{campaign_id}"
    try:
        await action()
    except (InvalidInput, Conflict) as exc:
        _field, reason = refusal(me.language, exc.field, str(exc))
        raise flash.redirect(back, "Not done: %(reason)s", kind="error", reason=reason) from None
    except CampaignError as exc:
        _field, reason = refusal(me.language, exc.field, exc.reason)
        raise flash.redirect(back, "Not done: %(reason)s", kind="error", reason=reason) from None
    raise flash.redirect(back, done)


def _editable_or_back(state: str, campaign_id: int) -> None:
    if state not in {s.value for s in EDITABLE}:
        raise flash.redirect(
            f"/campaigns/{campaign_id}",
            "Only a draft or a scheduled campaign can be changed.",
            kind="error",
        )


async def _refused(
    request: web.Request, campaign_id: int | None, form: Form, field: str, message: str
) -> web.Response:
    me = await viewer(request)
    shown_at, text = refusal(me.language, field, message)
    if shown_at not in FIELDS:
        shown_at = "form"
    return await _form_view(request, campaign_id, typed=form, errors={shown_at: text}, status=422)


async def _form_view(
    request: web.Request,
    campaign_id: int | None,
    *,
    typed: Form,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    db = request.app[DATABASE]
    hub_senders = senders(request)
    choices = Choices(
        segments=[(s.id, s.name) for s in await segments.listing(db)],
        email_templates=[
            (t.id, t.name) for t in await message_templates.listing(db, channel="email")
        ],
        sms_templates=[(t.id, t.name) for t in await message_templates.listing(db, channel="sms")],
        mailboxes=sorted((name, address) for name, (address, _) in hub_senders.mailboxes.items()),
        sms_gateways=sorted(hub_senders.sms_gateways.items()),
    )
    return await page(
        request,
        "campaign_form.html",
        status=status,
        section="campaigns",
        campaign_id=campaign_id,
        choices=choices,
        typed=typed,
        errors=errors or {},
        zone=(await viewer(request)).fmt.zone.key,
    )
