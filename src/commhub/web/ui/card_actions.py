"""What an operator does from a card: add a note (and a follow-up), send an SMS or an e-mail.

Each form carries a key made when the card was drawn, so a double click or a
resent form sends once (the services' idempotency keys).
"""

from __future__ import annotations

import uuid
from datetime import datetime, time

from aiohttp import web

from commhub.channels import ChannelUnavailable, Mailbox
from commhub.domain.email_compose import Recipient
from commhub.domain.identifiers import parse_id
from commhub.domain.moments import RANGE_TEXT, day_in_range
from commhub.domain.roles import Permission
from commhub.services import cards, email_sending, sms_sending
from commhub.services.email_sending import EmailRequest
from commhub.services.errors import InvalidInput
from commhub.services.sms_sending import SmsRequest
from commhub.web.endpoints import endpoint, path_id
from commhub.web.keys import CHANNELS, DATABASE, HUB, SETTINGS, principal
from commhub.web.ui import flash
from commhub.web.ui.forms import Form, back_to, read_form, refusals_shown_at
from commhub.web.ui.render import viewer

MAX_NOTE = 10_000


def _form_key(form: Form, user_id: int, kind: str) -> str:
    key = form.get("key", "")[:40]
    return f"ui:{kind}:{user_id}:{key}" if key else ""


async def _due(request: web.Request, form: Form) -> datetime | None:
    """The follow-up's due moment: a local date (and optional time) in the viewer's zone."""
    day = form.get("due_date", "").strip()
    if not day:
        return None
    at = form.get("due_time", "").strip() or "09:00"
    try:
        local = datetime.combine(datetime.strptime(day, "%Y-%m-%d").date(), time.fromisoformat(at))
    except ValueError:
        raise InvalidInput("due_date", f"{day} {at} is not a date and time") from None
    if not day_in_range(local.date()):
        raise InvalidInput("due_date", f"{day} is not a date {RANGE_TEXT}")
    zone = (await viewer(request)).fmt.zone
    return local.replace(tzinfo=zone)


@endpoint(
    "Add a note to a card, optionally with a follow-up.",
    permission=Permission.INTERACTIONS_WRITE,
    tag="pages",
)
async def add_note(request: web.Request) -> web.StreamResponse:
    contact_id = path_id(request)
    form = await read_form(request)
    back = f"/contacts/{contact_id}"
    user_id = principal(request).user_id
    text = form.get("text", "").strip()
    async with refusals_shown_at(back):
        if not text:
            raise InvalidInput("text", "the note is empty")
        if len(text) > MAX_NOTE:
            raise InvalidInput("text", f"a note holds at most {MAX_NOTE} characters")
        due = await _due(request, form)
        key = _form_key(form, user_id, "note") or f"note:{uuid.uuid4().hex}"
        await cards.add_note(
            request.app[DATABASE],
            contact_id=contact_id,
            user_id=user_id,
            text=text,
            key=key,
            due=due,
        )
    if due is not None:
        raise flash.redirect(back, "Follow-up set.")
    raise flash.redirect(back, "Note added.")


@endpoint("Send an SMS from a card.", permission=Permission.SMS_SEND, tag="pages")
async def send_sms(request: web.Request) -> web.StreamResponse:
    contact_id = path_id(request)
    form = await read_form(request)
    back = f"/contacts/{contact_id}"
    user_id = principal(request).user_id
    hub = request.app[HUB]
    async with refusals_shown_at(back):
        if not hub.sms_gateways:
            raise ChannelUnavailable("no SMS gateway is configured")
        sent, created = await sms_sending.send(
            request.app[DATABASE],
            hub.sms_gateways,
            SmsRequest(
                text=form.get("text", ""),
                to=form.get("to") or None,
                contact_id=contact_id,
                key=_form_key(form, user_id, "sms"),
            ),
            user_id=user_id,
            region=request.app[SETTINGS].phone_region,
        )
        if created:
            hub.dispatch_now(sent.message.gateway)
    raise flash.redirect(back, "SMS queued.")


@endpoint("Send an e-mail from a card.", permission=Permission.EMAIL_SEND, tag="pages")
async def send_email(request: web.Request) -> web.StreamResponse:
    contact_id = path_id(request)
    form = await read_form(request)
    back = back_to(request, f"/contacts/{contact_id}")  # the card, or the thread replied to
    user_id = principal(request).user_id
    async with refusals_shown_at(back):
        mailers = [c for c in request.app[CHANNELS].values() if isinstance(c, Mailbox)]
        if not mailers:
            raise ChannelUnavailable("no mailbox is configured")
        chosen = form.get("mailbox", "")
        mailer = next((m for m in mailers if m.name == chosen), mailers[0])
        to = form.get("to", "").strip()
        if not to:
            raise InvalidInput("to", "choose an address")
        reply_to = form.get("reply_to_id", "")
        row, created = await email_sending.send(
            request.app[DATABASE],
            mailer,
            EmailRequest(
                to=(Recipient(to),),
                subject=form.get("subject", ""),
                text=form.get("text", ""),
                contact_id=contact_id,
                reply_to_id=parse_id(reply_to),
                key=_form_key(form, user_id, "email"),
            ),
            user_id=user_id,
            region=request.app[SETTINGS].phone_region,
        )
        if created:
            request.app[HUB].dispatch_now(row.source)
    raise flash.redirect(back, "E-mail queued.")
