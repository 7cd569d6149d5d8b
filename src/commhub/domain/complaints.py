"""Spam complaints: the feedback-loop reports mailbox providers send (ARF, RFC 5965).

When a recipient presses "this is spam", a provider enrolled in a feedback
loop sends the sender a ``multipart/report; report-type=feedback-report``: a
note for people, a ``message/feedback-report`` part (``Feedback-Type: abuse``,
``Original-Rcpt-To``…) and the original message or its headers. The hub
reads who complained about which of its messages, so that person gets no
more marketing and the campaign counts the complaint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32
from typing import Final

_MSGID: Final = re.compile(r"<([^<>\s]+)>")
NOT_COMPLAINTS: Final = frozenset({"not-spam", "auth-failure"})
"""Feedback types that report something else: a "not spam" vote, a failed DKIM/SPF check."""
_ADDRESS: Final = re.compile(r"[^\s<>;,]+@[^\s<>;,]+")


@dataclass(frozen=True, slots=True)
class Complaint:
    original_message_id: str
    recipient: str
    """Who complained, as the report or the original names them (lower case), if it does."""
    feedback_type: str
    """``abuse`` (spam), ``fraud``, ``virus``, ``other``… as the report says."""


def find_complaint(message: Message) -> Complaint | None:
    """The complaint ``message`` reports, or ``None`` when it is no feedback report."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type", "")).lower() != "feedback-report":
        return None
    fields: Message | None = None
    original: Message | None = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/feedback-report":
            fields = _fields(part)
        elif kind in ("message/rfc822", "text/rfc822-headers") and original is None:
            original = _headers(part)
    if fields is None:
        return None
    feedback_type = str(fields.get("feedback-type", "abuse")).strip().lower() or "abuse"
    if feedback_type in NOT_COMPLAINTS:
        return None
    message_id = _first(_MSGID, str(original.get("message-id", ""))) if original else ""
    recipient = _first(_ADDRESS, str(fields.get("original-rcpt-to", ""))) or (
        _first(_ADDRESS, str(original.get("to", ""))) if original else ""
    )
    return Complaint(
        original_message_id=message_id,
        recipient=recipient.lower(),
        feedback_type=feedback_type,
    )


def _fields(part: Message) -> Message:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    text = payload if isinstance(payload, str) else ""
    return HeaderParser(policy=compat32).parsestr(text)


def _headers(part: Message) -> Message:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    raw = part.get_payload(decode=True)
    data = raw if isinstance(raw, bytes) else str(payload).encode("utf-8", "replace")
    return BytesParser(policy=compat32).parsebytes(data, headersonly=True)


def _first(pattern: re.Pattern[str], text: str) -> str:
    match = pattern.search(text)
    if match is None:
        return ""
    return match.group(1) if pattern.groups else match.group(0)
