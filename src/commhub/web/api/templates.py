"""Message templates: marketers write them (checked on save) and preview them with a contact."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from commhub.channels import Mailbox
from commhub.domain.roles import Permission
from commhub.models import MessageTemplate
from commhub.services import message_templates as templates
from commhub.services.message_templates import TemplateDraft
from commhub.web.api import template_schemas as schemas
from commhub.web.endpoints import endpoint, json_response, path_id, read_body
from commhub.web.keys import CHANNELS, DATABASE, HUB, SETTINGS, principal


def template_out(row: MessageTemplate) -> schemas.TemplateOut:
    return schemas.TemplateOut(
        id=row.id,
        name=row.name,
        channel=row.channel,
        language=row.language,
        subject=row.subject,
        text=row.text,
        html=row.html,
        stock_key=row.stock_key,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@endpoint(
    "Every template, by name.",
    permission=Permission.TEMPLATES,
    tag="templates",
    response=schemas.TemplateList,
)
async def list_templates(request: web.Request) -> web.StreamResponse:
    rows = await templates.listing(request.app[DATABASE])
    return json_response(schemas.TemplateList(items=[template_out(r) for r in rows]))


@endpoint(
    "Save a new template; a syntax error names the field and its line.",
    permission=Permission.TEMPLATES,
    tag="templates",
    body=schemas.TemplateIn,
    response=schemas.TemplateOut,
    status=201,
)
async def create_template(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.TemplateIn)
    row = await templates.create(
        request.app[DATABASE],
        TemplateDraft(**body.model_dump()),
        user_id=principal(request).user_id,
    )
    response = json_response(template_out(row), status=201)
    response.headers["Location"] = f"/api/v1/templates/{row.id}"
    return response


@endpoint(
    "One template.", permission=Permission.TEMPLATES, tag="templates", response=schemas.TemplateOut
)
async def get_template(request: web.Request) -> web.StreamResponse:
    return json_response(template_out(await templates.get(request.app[DATABASE], path_id(request))))


@endpoint(
    "Change a template; campaigns already started keep the copy they took.",
    permission=Permission.TEMPLATES,
    tag="templates",
    body=schemas.TemplateUpdate,
    response=schemas.TemplateOut,
)
async def update_template(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.TemplateUpdate)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    row = await templates.update(request.app[DATABASE], path_id(request), changes)
    return json_response(template_out(row))


@endpoint("Set a template aside.", permission=Permission.TEMPLATES, tag="templates", status=204)
async def remove_template(request: web.Request) -> web.StreamResponse:
    await templates.remove(request.app[DATABASE], path_id(request))
    return web.Response(status=204)


@endpoint(
    "Render a template as written for one contact (or with empty values), unsaved.",
    permission=Permission.TEMPLATES,
    tag="templates",
    body=schemas.PreviewIn,
    response=schemas.PreviewOut,
)
async def preview_template(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.PreviewIn)
    fields = body.model_dump(exclude={"contact_id", "virtual"})
    shown = await templates.preview(
        request.app[DATABASE],
        TemplateDraft(**fields),
        contact_id=body.contact_id,
        public_url=request.app[SETTINGS].public_url or str(request.url.origin()),
        virtual=body.virtual,
    )
    return json_response(
        schemas.PreviewOut(
            subject=shown.subject,
            text=shown.text,
            html=shown.html,
            sms=None
            if shown.sms is None
            else schemas.SmsShapeOut(
                encoding=shown.sms.encoding.value,
                segments=shown.sms.segments,
                units=shown.sms.units,
            ),
            missing=shown.missing,
        )
    )


@endpoint(
    "Members of a segment for whom the template would leave a variable empty.",
    permission=Permission.TEMPLATES,
    tag="templates",
    body=schemas.GapsIn,
    response=schemas.GapsOut,
)
async def template_gaps(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.GapsIn)
    found = await templates.gaps(
        request.app[DATABASE],
        TemplateDraft(**body.model_dump(exclude={"segment_id", "limit"})),
        body.segment_id,
        limit=body.limit,
    )
    return json_response(
        schemas.GapsOut(
            members=found.members,
            scanned=found.scanned,
            count=found.count,
            people=[
                schemas.GapOut(contact_id=i, name=name, missing=missing)
                for i, name, missing in found.people
            ],
        )
    )


@endpoint(
    "Send the template to yourself as a test, written for a contact (or with empty values).",
    permission=Permission.TEMPLATES,
    tag="templates",
    body=schemas.TestIn,
    response=schemas.TestOut,
    status=202,
)
async def test_template(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.TestIn)
    channels = request.app[CHANNELS]
    mailers = [
        c for n, c in channels.items() if isinstance(c, Mailbox) and body.mailbox in (None, n)
    ]
    row = await templates.send_test(
        request.app[DATABASE],
        TemplateDraft(**body.model_dump(exclude={"contact_id", "to", "mailbox", "virtual"})),
        to=body.to,
        contact_id=body.contact_id,
        mailer=mailers[0] if mailers else None,
        gateways=request.app[HUB].sms_gateways,
        user_id=principal(request).user_id,
        region=request.app[SETTINGS].phone_region,
        public_url=request.app[SETTINGS].public_url or str(request.url.origin()),
    )
    request.app[HUB].dispatch_now(row.source)
    return json_response(
        schemas.TestOut(outbox_id=row.id, interaction_id=row.interaction_id, state=row.state),
        status=202,
    )


@endpoint(
    "The templates the hub ships (welcome, follow-up, invoice reminder, event invitation…), "
    "in English and Russian, to copy and edit.",
    permission=Permission.TEMPLATES,
    tag="templates",
    response=schemas.StockList,
)
async def stock_templates(request: web.Request) -> web.StreamResponse:
    found = await templates.stock()
    return json_response(
        schemas.StockList(
            items=[
                schemas.StockOut(
                    channel=t.channel,
                    key=t.key,
                    language=t.language,
                    name=t.name,
                    subject=t.subject,
                    text=t.text,
                    html=t.html,
                )
                for t in found
            ]
        )
    )


@endpoint(
    "Copy a shipped template into one of your own, to edit.",
    permission=Permission.TEMPLATES,
    tag="templates",
    body=schemas.CopyIn,
    response=schemas.TemplateOut,
    status=201,
)
async def copy_stock_template(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.CopyIn)
    row = await templates.copy_stock(
        request.app[DATABASE],
        body.channel,
        body.key,
        body.language,
        user_id=principal(request).user_id,
    )
    response = json_response(template_out(row), status=201)
    response.headers["Location"] = f"/api/v1/templates/{row.id}"
    return response
