"""Campaigns: marketers set them up and run them; managers read their results."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from commhub.channels import Mailbox, SmsGateway
from commhub.domain.roles import Permission
from commhub.models import Campaign
from commhub.services import campaigns
from commhub.services.campaigns import CampaignDraft, Senders
from commhub.web.api import campaign_schemas as schemas
from commhub.web.endpoints import endpoint, json_response, path_id, read_body, read_query
from commhub.web.keys import CHANNELS, DATABASE, HUB, SETTINGS, principal


def senders(request: web.Request) -> Senders:
    """The mailboxes and SMS gateways this hub has, as a campaign may name them."""
    channels = request.app[CHANNELS].values()
    return Senders(
        mailboxes={c.name: (c.address, c.display_name) for c in channels if isinstance(c, Mailbox)},
        sms_gateways={c.name: tuple(c.numbers) for c in channels if isinstance(c, SmsGateway)},
    )


def campaign_out(row: Campaign, counts: dict[str, int] | None = None) -> schemas.CampaignOut:
    return schemas.CampaignOut(
        id=row.id,
        name=row.name,
        state=row.state,
        state_reason=row.state_reason,
        channel=row.channel,
        purpose=row.purpose,
        segment_id=row.segment_id,
        email_template_id=row.email_template_id,
        sms_template_id=row.sms_template_id,
        mailbox=row.mailbox,
        sms_gateway=row.sms_gateway,
        sms_sender=row.sms_sender,
        schedule=row.schedule,
        start_at=row.start_at,
        window_from=row.window_from,
        window_to=row.window_to,
        rate=row.rate,
        bounce_limit=row.bounce_limit,
        complaint_limit=row.complaint_limit,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        counts=None
        if counts is None
        else schemas.Counts(recipients=row.recipients, excluded=row.excluded, **counts),
    )


async def _shown(request: web.Request, campaign_id: int, *, status: int = 200) -> web.Response:
    found = await campaigns.progress(request.app[DATABASE], campaign_id)
    return json_response(campaign_out(found.campaign, found.counts), status=status)


@endpoint(
    "Campaigns, newest first.",
    permission=Permission.CAMPAIGN_RESULTS,
    tag="campaigns",
    response=schemas.CampaignList,
)
async def list_campaigns(request: web.Request) -> web.StreamResponse:
    rows = await campaigns.listing(request.app[DATABASE])
    return json_response(schemas.CampaignList(items=[campaign_out(r) for r in rows]))


@endpoint(
    "Create a campaign (a draft until it is started).",
    permission=Permission.CAMPAIGNS,
    tag="campaigns",
    body=schemas.CampaignCreate,
    response=schemas.CampaignOut,
    status=201,
)
async def create_campaign(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.CampaignCreate)
    row = await campaigns.create(
        request.app[DATABASE],
        CampaignDraft(**body.model_dump()),
        user_id=principal(request).user_id,
    )
    response = await _shown(request, row.id, status=201)
    response.headers["Location"] = f"/api/v1/campaigns/{row.id}"
    return response


@endpoint(
    "A campaign with its progress: recipients, sent, delivered, bounced, failed, withheld…",
    permission=Permission.CAMPAIGN_RESULTS,
    tag="campaigns",
    response=schemas.CampaignOut,
)
async def get_campaign(request: web.Request) -> web.StreamResponse:
    return await _shown(request, path_id(request))


@endpoint(
    "Change a draft or scheduled campaign.",
    permission=Permission.CAMPAIGNS,
    tag="campaigns",
    body=schemas.CampaignUpdate,
    response=schemas.CampaignOut,
)
async def update_campaign(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.CampaignUpdate)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    row = await campaigns.update_draft(request.app[DATABASE], path_id(request), changes)
    return await _shown(request, row.id)


@endpoint(
    "Start a campaign now, or at its start time; its templates are copied as they are now.",
    permission=Permission.CAMPAIGNS,
    tag="campaigns",
    response=schemas.CampaignOut,
)
async def start_campaign(request: web.Request) -> web.StreamResponse:
    row = await campaigns.start(
        request.app[DATABASE],
        path_id(request),
        senders(request),
        public_url=request.app[SETTINGS].public_url or str(request.url.origin()),
    )
    request.app[HUB].keep_campaigns_now()
    return await _shown(request, row.id)


@endpoint(
    "Pause a running campaign: no new message is handed over until it is resumed.",
    permission=Permission.CAMPAIGNS,
    tag="campaigns",
    body=schemas.PauseBody,
    response=schemas.CampaignOut,
)
async def pause_campaign(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.PauseBody)
    row = await campaigns.pause(request.app[DATABASE], path_id(request), reason=body.reason)
    return await _shown(request, row.id)


@endpoint(
    "Resume a paused campaign.",
    permission=Permission.CAMPAIGNS,
    tag="campaigns",
    response=schemas.CampaignOut,
)
async def resume_campaign(request: web.Request) -> web.StreamResponse:
    row = await campaigns.resume(request.app[DATABASE], path_id(request))
    request.app[HUB].keep_campaigns_now()
    return await _shown(request, row.id)


@endpoint(
    "Cancel a campaign: every message not yet handed over is cancelled.",
    permission=Permission.CAMPAIGNS,
    tag="campaigns",
    response=schemas.CampaignOut,
)
async def cancel_campaign(request: web.Request) -> web.StreamResponse:
    row = await campaigns.cancel(request.app[DATABASE], path_id(request))
    return await _shown(request, row.id)


@endpoint(
    "The campaign's recipients in list order, each with the outcome and its reason.",
    permission=Permission.CAMPAIGN_RESULTS,
    tag="campaigns",
    query=schemas.RecipientQuery,
    response=schemas.RecipientList,
)
async def campaign_recipients(request: web.Request) -> web.StreamResponse:
    query = read_query(request, schemas.RecipientQuery)
    rows = await campaigns.recipients(
        request.app[DATABASE],
        path_id(request),
        state=query.state,
        after=query.after,
        limit=query.limit,
    )
    return json_response(
        schemas.RecipientList(
            items=[
                schemas.RecipientOut(
                    contact_id=r.contact_id,
                    name=r.name,
                    channel=r.channel,
                    address=r.address,
                    state=r.state,
                    reason=r.reason or "",
                    sent_at=r.sent_at,
                )
                for r in rows
            ],
            next_after=rows[-1].seq if len(rows) == query.limit else None,
        )
    )
