"""SMS: preview a text's encoding and segments, send to a contact, read a message's status."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.domain.sms_text import MAX_SEGMENTS, SmsTextError
from commhub.models import Outbox
from commhub.services import sms_sending
from commhub.services.sms_sending import SmsRequest, SmsView, preview
from commhub.web.api import sms_schemas as schemas
from commhub.web.api.contacts import region_of
from commhub.web.endpoints import endpoint, json_response, path_id, read_body
from commhub.web.keys import DATABASE, HUB, principal
from commhub.web.problems import invalid

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"


@endpoint(
    "How a text goes out: GSM-7 or UCS-2 (any Cyrillic forces UCS-2), how many segments, "
    "and how much room is left in the last one. The same count is stored with the message.",
    permission=Permission.SMS_SEND,
    tag="sms",
    body=schemas.SmsPreviewIn,
    response=schemas.SmsPreviewOut,
)
async def preview_sms(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.SmsPreviewIn)
    try:
        shape = preview(body.text)
    except SmsTextError as exc:
        raise invalid("text", str(exc)) from None
    return json_response(
        schemas.SmsPreviewOut(
            encoding=shape.encoding.value,
            characters=shape.characters,
            units=shape.units,
            segments=shape.segments,
            per_segment=shape.per_segment,
            remaining=shape.remaining,
            max_segments=MAX_SEGMENTS,
        )
    )


@endpoint(
    "Send an SMS to a number or a contact. It is on the card at once as 'queued' and goes "
    "out at its gateway's rate; its status follows the gateway's reports (sent, delivered, "
    "undelivered, failed with the reason). A number that texted STOP is refused. Send an "
    "Idempotency-Key header to make a retry send once.",
    permission=Permission.SMS_SEND,
    tag="sms",
    body=schemas.SmsCreate,
    response=schemas.SmsOut,
    status=202,
)
async def send_sms(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.SmsCreate)
    key = request.headers.get(IDEMPOTENCY_HEADER, "")
    if len(key) > 64 or not key.isprintable():
        raise invalid(IDEMPOTENCY_HEADER, "at most 64 printable characters")
    user_id = principal(request).user_id
    hub = request.app[HUB]
    sms_request = SmsRequest(
        text=body.text,
        to=body.to,
        contact_id=body.contact_id,
        sender=body.sender,
        purpose=body.purpose,
        key=f"api:{user_id}:{key}" if key else "",
    )
    found, created = await sms_sending.send(
        request.app[DATABASE],
        hub.sms_gateways,
        sms_request,
        asked=body.model_dump(mode="json"),
        user_id=user_id,
        region=region_of(request, None),
    )
    if created:
        hub.dispatch_now(found.message.gateway)
    return json_response(sms_out(found), status=202 if created else 200)


@endpoint(
    "One SMS as the card shows it: text, encoding and segments, gateway, delivery status.",
    permission=Permission.CONTACTS_READ,
    tag="sms",
    response=schemas.SmsOut,
)
async def get_sms(request: web.Request) -> web.StreamResponse:
    found = await sms_sending.message(request.app[DATABASE], path_id(request))
    return json_response(sms_out(found))


def sms_out(found: SmsView) -> schemas.SmsOut:
    interaction, message, outbox = found.interaction, found.message, found.outbox
    return schemas.SmsOut(
        id=interaction.id,
        key=outbox.key if outbox is not None else interaction.external_id,
        state=outbox.state if outbox is not None else "received",
        status=interaction.status,
        gateway=message.gateway,
        sender=message.sender,
        recipient=message.recipient,
        contact_id=interaction.contact_id,
        text=message.text,
        encoding=message.encoding,
        segments=message.segments,
        reason=message.reason or _doubt(outbox),
        attempts=outbox.attempts if outbox is not None else 0,
        created_at=message.created_at,
        sent_at=outbox.sent_at if outbox is not None else None,
    )


def _doubt(outbox: Outbox | None) -> str | None:
    """Why a message is uncertain, for the card and the API."""
    if outbox is None or outbox.state != "uncertain":
        return None
    return outbox.last_error
