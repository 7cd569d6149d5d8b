"""Twilio's callbacks: checking their signature and reading them into the core's events.

Twilio signs every request it makes with the account's Auth Token
(``X-Twilio-Signature``: HMAC-SHA1 over the full URL it called followed by
the sorted POST parameters). Behind a TLS proxy the hub sees another URL
than Twilio called, so the signature is checked on the URL rebuilt from the
channel's public base URL. The signature is checked with the twilio
library's own :class:`~twilio.request_validator.RequestValidator`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote, urlsplit

from twilio.request_validator import RequestValidator

from commhub.channels import (
    DeliveryState,
    SmsReceived,
    SmsReport,
    WebhookInvalid,
    WebhookRefused,
    WebhookRequest,
)

INBOUND: Final = "inbound"
"""``{public_url}/hooks/{channel}/inbound``: the number's "A message comes in" webhook."""
STATUS: Final = "status"
"""``{public_url}/hooks/{channel}/status``: the StatusCallback given with every message sent."""

SIGNATURE_HEADER: Final = "x-twilio-signature"
EMPTY_TWIML: Final = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
"""The answer to an inbound message: nothing to reply (the hub never auto-replies)."""
TWIML_TYPE: Final = "text/xml"

STATES: Final[Mapping[str, DeliveryState]] = {
    "accepted": DeliveryState.QUEUED,  # a Messaging Service took it, no sender chosen yet
    "scheduled": DeliveryState.QUEUED,
    "queued": DeliveryState.QUEUED,
    "sending": DeliveryState.SENT,
    "sent": DeliveryState.SENT,  # the carrier took it
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.DELIVERED,  # WhatsApp/RCS read receipts
    "undelivered": DeliveryState.UNDELIVERED,
    "failed": DeliveryState.FAILED,
    "canceled": DeliveryState.FAILED,  # a scheduled message cancelled before it went
}
"""Twilio's MessageStatus values and where they put a message we sent."""

ERROR_TEXTS: Final[Mapping[str, str]] = {
    "30001": "Queue overflow",
    "30002": "Account suspended",
    "30003": "Unreachable destination handset",
    "30004": "Message blocked",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered by the carrier",
    "30008": "Unknown error",
    "30010": "Message price exceeds max price",
}
"""Twilio's delivery error codes, worded, since a status callback carries only the number."""


def signed_url(request: WebhookRequest, *, public_url: str, channel: str) -> str:
    """The URL Twilio called and signed: the public base, the hook's path, the query as sent."""
    query = urlsplit(request.url).query
    path = f"/hooks/{quote(channel, safe='')}/{request.path.strip('/')}"
    return public_url + path + (f"?{query}" if query else "")


def check_signature(
    request: WebhookRequest, *, url: str, auth_token: str, account_sid: str
) -> Mapping[str, str]:
    """The request's parameters, once it is proven to come from our Twilio account.

    A POST is signed over its form fields, a GET (a webhook configured as
    HTTP GET) over its URL alone, query included. A signature made with our
    token for another AccountSid (a subaccount sharing the URL) is refused too.
    """
    signature = _header(request.headers, SIGNATURE_HEADER)
    if not signature:
        raise WebhookRefused("no X-Twilio-Signature header")
    is_post = request.method.upper() == "POST"
    params = request.form if is_post else request.query
    signed = dict(params) if is_post else {}
    if not RequestValidator(auth_token).validate(url, signed, signature):
        raise WebhookRefused(f"X-Twilio-Signature does not match {url} and its parameters")
    if params.get("AccountSid") != account_sid:
        raise WebhookRefused(f"AccountSid {params.get('AccountSid')!r} is not this channel's")
    return params


def read_inbound(
    source: str, fields: Mapping[str, str], settled: asyncio.Future[None]
) -> SmsReceived:
    """An incoming message (Twilio joined its segments; NumSegments says how many there were)."""
    return SmsReceived(
        source=source,
        external_id=_required(fields, "MessageSid"),
        sender=_required(fields, "From"),
        recipient=_required(fields, "To"),
        text=fields.get("Body", ""),
        received_at=datetime.now(UTC),  # Twilio's request carries no time of its own
        parts=_count(fields, "NumSegments"),
        settled=settled,
    )


def read_status(
    source: str, fields: Mapping[str, str], settled: asyncio.Future[None]
) -> SmsReport | None:
    """A status callback on a message we sent; ``None`` for a status with no meaning to us."""
    sid = _required(fields, "MessageSid")
    status = _required(fields, "MessageStatus").strip().lower()
    state = STATES.get(status)
    if state is None:
        return None
    return SmsReport(
        source=source,
        gateway_id=sid,
        state=state,
        at=datetime.now(UTC),
        reason=failure_reason(fields.get("ErrorCode", ""), fields.get("ErrorMessage", "")),
        settled=settled,
    )


def failure_reason(code: str, message: str) -> str:
    """``30003 Unreachable destination handset``: Twilio's code and its words for it."""
    code = code.strip()
    if code in ("", "0"):
        return message.strip()
    return f"{code} {message.strip() or ERROR_TEXTS.get(code, '')}".strip()


def _header(headers: Mapping[str, str], name: str) -> str:
    """Header lookup that ignores case, whatever mapping the web layer handed over."""
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value.strip():
        raise WebhookInvalid(f"the {name} field is missing")
    return value


def _count(fields: Mapping[str, str], name: str) -> int:
    raw = fields.get(name, "1").strip() or "1"
    if not raw.isdigit() or int(raw) < 1:
        raise WebhookInvalid(f"{name} is {raw!r}, not a positive number")
    return int(raw)
