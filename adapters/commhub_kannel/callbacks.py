"""Kannel's callbacks: the URLs the hub gives Kannel, and reading what Kannel sends to them.

smsbox calls two URLs under ``{public_url}/hooks/{channel}/``:

- ``dlr``: a delivery report. The hub passes the URL with each message as
  ``dlr-url``; smsbox fills in its escape codes when a report arrives
  (Kannel user guide, "Parameters (Escape Codes)"; gw/urltrans.c): ``%d``
  the report type, ``%A`` the SMSC's words, ``%T`` the time. Kannel's
  sendsms answer carries no message id, so the URL carries our own key.
- ``mo``: a message from a phone, the ``post-url`` of the ``sms-service``
  the admin adds to kannel.conf. smsbox POSTs the text's bytes as they came
  (UTF-16BE for UCS-2, said in Content-Type) and fills ``%I`` with the
  message's UUID, which stays the same when smsbox tries again
  (``http-request-retry``), so a repeated delivery is recognised.

Both carry the channel's secret in ``secret=``; Kannel signs nothing, so the
secret is the whole of the check and is compared in constant time.

Kannel reads every ``%`` in these URLs as an escape code and passes an
unknown one through, so ``%C3`` (half of a percent-encoded "ы") would become
the message's charset. Our own text in them is percent-encoded and each
``%`` doubled: ``%%`` is Kannel's escape for a plain ``%``.
"""

from __future__ import annotations

import asyncio
import codecs
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

from commhub.channels import (
    DeliveryState,
    SmsReceived,
    SmsReport,
    WebhookInvalid,
    WebhookRefused,
    WebhookRequest,
)

DLR: Final = "dlr"
MO: Final = "mo"

STATES: Final[Mapping[int, DeliveryState]] = {
    1: DeliveryState.DELIVERED,  # delivered to the phone
    2: DeliveryState.UNDELIVERED,  # the network could not deliver it
    4: DeliveryState.SENT,  # buffered: queued on the SMSC
    8: DeliveryState.SENT,  # the SMSC took it ("ACK/")
    16: DeliveryState.FAILED,  # the SMSC refused it, or no SMSC would route it ("NACK/...")
}
"""Kannel's report types (dlr-mask bits) and what each means for the message."""

_DLR_FIELDS: Final = "&type=%d&reply=%A&ts=%T"
_MO_FIELDS: Final = "&id=%I&from=%p&to=%P&coding=%c&charset=%C&ts=%T&smsc=%i"
_UCS2: Final = 2
_CHARSET: Final = re.compile(r"""charset\s*=\s*"?([A-Za-z0-9._:-]+)"?""", re.IGNORECASE)
_RECEIPT: Final = re.compile(r"\bstat:(\w+).*?\berr:(\w+)", re.IGNORECASE | re.DOTALL)
"""An SMPP delivery receipt's text (SMPP 3.4 Appendix B): ``... stat:UNDELIV err:001 ...``."""
_REASON_MAX: Final = 200


def _literal(text: str) -> str:
    """Our text inside a URL Kannel will expand: ``%`` doubled so it stays a ``%``."""
    return text.replace("%", "%%")


def hooks_base(public_url: str, channel: str) -> str:
    """``{public_url}/hooks/{channel}``: where the hub's web app hands requests to this channel."""
    return f"{public_url.rstrip('/')}/hooks/{quote(channel, safe='')}"


def dlr_url(base: str, *, secret: str, key: str) -> str:
    """The ``dlr-url`` for one message: its outbox key in ``key``, Kannel's report in the rest."""
    static = f"{base}/{DLR}?secret={quote(secret, safe='')}&key={quote(key, safe='')}"
    return _literal(static) + _DLR_FIELDS


def mo_url(base: str, *, secret: str) -> str:
    """The ``post-url`` of the ``sms-service`` that forwards messages from phones to the hub."""
    return _literal(f"{base}/{MO}?secret={quote(secret, safe='')}") + _MO_FIELDS


def authenticate(request: WebhookRequest, *, secret: str) -> None:
    """Refuse a request without this channel's secret; constant time, so it leaks no prefix."""
    given = request.query.get("secret", "")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise WebhookRefused("the callback's secret is missing or wrong")


def read_report(source: str, request: WebhookRequest, settled: asyncio.Future[None]) -> SmsReport:
    """A delivery report on the message whose key is in the URL."""
    query = request.query
    key = query.get("key", "")
    if not key:
        raise WebhookInvalid("key missing: a report must come to the dlr-url the hub gave Kannel")
    raw_type = query.get("type", "")
    try:
        state = STATES[int(raw_type)]
    except (ValueError, KeyError):
        raise WebhookInvalid(
            f"type {raw_type!r} is not a Kannel report type (1, 2, 4, 8, 16)"
        ) from None
    reply = query.get("reply", "")
    failed = state in (DeliveryState.UNDELIVERED, DeliveryState.FAILED)
    return SmsReport(
        source=source,
        gateway_id=key,
        state=state,
        at=_time(query.get("ts", "")),
        reason=_reason(reply) if failed else "",
        settled=settled,
    )


def read_received(
    source: str, request: WebhookRequest, settled: asyncio.Future[None]
) -> SmsReceived:
    """A message from a phone, its text decoded as smsbox says it is encoded."""
    query = request.query
    message_id = query.get("id", "")
    if not message_id:
        raise WebhookInvalid("id missing: the sms-service post-url must carry id=%I")
    sender = query.get("from", "")
    if not sender:
        raise WebhookInvalid("from missing: the sms-service post-url must carry from=%p")
    return SmsReceived(
        source=source,
        external_id=message_id,
        sender=sender,
        recipient=query.get("to", ""),
        text=_text(request),
        received_at=_time(query.get("ts", "")),
        settled=settled,
    )


def _text(request: WebhookRequest) -> str:
    """The body in its charset: Content-Type's, else ``charset=%C``, else by ``coding=%c``.

    smsbox sends UCS-2 as ``text/plain; charset="UTF-16BE"`` and GSM text as
    UTF-8 (gw/smsbox.c, post-url); 8-bit data has no charset and is read as
    UTF-8 with anything undecodable marked, so a binary message still shows.
    """
    content_type = next(
        (value for name, value in request.headers.items() if name.lower() == "content-type"), ""
    )
    found = _CHARSET.search(content_type)
    charset = found.group(1) if found else request.query.get("charset", "")
    if not charset:
        charset = "utf-16-be" if request.query.get("coding") == str(_UCS2) else "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    return request.body.decode(charset, errors="replace")


def _time(raw: str) -> datetime:
    """``%T``, Unix seconds; now when Kannel left it out."""
    if not raw:
        return datetime.now(UTC)
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (ValueError, OverflowError, OSError):
        raise WebhookInvalid(f"ts {raw!r} is not a Unix time") from None


def _reason(reply: str) -> str:
    """The SMSC's words for a failure, short: ``NACK/no SMSC``, ``UNDELIV (err 001)``."""
    receipt = _RECEIPT.search(reply)
    if receipt:
        return f"{receipt.group(1)} (err {receipt.group(2)})"
    return reply.strip()[:_REASON_MAX]
