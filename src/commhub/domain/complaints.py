"""Complaints: a mailbox provider's report that a recipient marked our mail as spam.

Providers with a feedback loop send these in the Abuse Reporting Format
(RFC 5965): ``multipart/report; report-type=feedback-report`` holding a
human-readable part, a ``message/feedback-report`` part of fields
(``Feedback-Type``, ``User-Agent``, ``Version``, often ``Original-Rcpt-To``)
and the original message (``message/rfc822``) or its header alone
(``text/rfc822-headers``, §2 (d)). The original's Message-ID ties the report
to the message we sent; the recipient's address is often redacted
(RFC 6590), so it is only a fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from typing import Final

from commhub.domain.bounces import original_id

REPORT_TYPE: Final = "feedback-report"
NOT_COMPLAINTS: Final = frozenset({"not-spam", "auth-failure"})
"""Feedback types that object to nothing: a "this is not spam" vote (RFC 6430) and a
DKIM/SPF failure report (RFC 6591). ``abuse``, ``fraud``, ``virus`` and ``other``
(RFC 5965 §7.3) are complaints."""
_ADDRESS: Final = re.compile(r"<?\s*([^<>\s;]+@[^<>\s;]+?)\s*>?\s*$")


@dataclass(frozen=True, slots=True)
class Complaint:
    """One feedback-loop report about a message we sent."""

    feedback_type: str
    """``abuse``, ``fraud``, ``virus``, ``other``… lower case (RFC 5965 §3.1)."""
    original_message_id: str
    """Without angle brackets; empty when the provider stripped the original."""
    recipient: str
    """``Original-Rcpt-To`` when the provider kept it, lower case; else empty."""
    reporter: str
    """Who generated it (``User-Agent``, else ``Reporting-MTA``): for the evidence."""


def find_complaint(message: Message) -> Complaint | None:
    """The complaint ``message`` reports, or ``None`` when it is no complaint (not a
    feedback report, or one of :data:`NOT_COMPLAINTS`)."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type", "", header="content-type")).lower() != REPORT_TYPE:
        return None
    fields: Message | None = None
    original = ""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/feedback-report" and fields is None:
            fields = _fields(part)
        elif content_type in ("message/rfc822", "text/rfc822-headers", "message/global"):
            original = original or original_id(part)
    if fields is None:
        return None
    feedback_type = " ".join(str(fields.get("feedback-type", "")).split()).lower()
    if not feedback_type or feedback_type in NOT_COMPLAINTS:
        return None  # Feedback-Type is required (RFC 5965 §3.1): without it, nothing to act on
    reporter = str(fields.get("user-agent") or fields.get("reporting-mta") or "")
    return Complaint(
        feedback_type=feedback_type,
        original_message_id=original,
        recipient=_address(str(fields.get("original-rcpt-to", ""))),
        reporter=" ".join(reporter.split())[:200],
    )


def _fields(part: Message) -> Message:
    """The report's fields: the parser reads them as a message header, or leaves text."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
    return HeaderParser(policy=compat32).parsestr(text.lstrip("\r\n"))


def _address(value: str) -> str:
    """``<user@example.com>`` → ``user@example.com``; a redacted or empty field → ``""``."""
    match = _ADDRESS.search(value.strip())
    return match.group(1).lower() if match else ""
