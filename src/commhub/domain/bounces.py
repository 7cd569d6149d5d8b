"""Mail written by machines: delivery-status reports (bounces) and auto-replies.

A bounce in the standard form (RFC 3464: ``multipart/report;
report-type=delivery-status``) says per recipient what failed and why, and
usually carries the original message's headers, so it is tied to the message
we sent by its Message-ID. Older mail servers write free-form bounces;
flufl.bounce (GNU Mailman's detectors) finds the failed addresses in those,
and the original Message-ID is looked for in the quoted headers.

Auto-replies follow RFC 3834 (``Auto-Submitted``) or one of the older
conventions (``X-Autoreply``, ``Precedence: auto_reply``, Microsoft's
``X-Auto-Response-Suppress`` on out-of-office notes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32
from typing import Final

from flufl.bounce import all_failures

_DAEMONS: Final = frozenset(
    {"mailer-daemon", "postmaster", "mail-delivery-subsystem", "mail-daemon", "mailerdaemon"}
)
_QUOTED_MSGID: Final = re.compile(r"^\s*Message-ID:\s*<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE)
_STATUS: Final = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")


@dataclass(frozen=True, slots=True)
class BouncedRecipient:
    address: str
    permanent: bool
    status: str = ""
    """The enhanced status code (RFC 3463), e.g. ``5.1.1``."""
    reason: str = ""
    """The remote server's diagnostic, as reported."""


@dataclass(frozen=True, slots=True)
class Bounce:
    """A report that mail we sent was not delivered."""

    original_message_id: str
    recipients: tuple[BouncedRecipient, ...]

    @property
    def permanent(self) -> bool:
        return any(recipient.permanent for recipient in self.recipients)

    @property
    def reason(self) -> str:
        for recipient in self.recipients:
            if recipient.reason or recipient.status:
                return " ".join(filter(None, (recipient.status, recipient.reason)))
        return ""


def is_auto_reply(message: Message) -> bool:
    """Whether a machine wrote ``message`` in answer to something (never answer it back)."""
    submitted = str(message.get("auto-submitted", "")).strip().lower()
    if submitted and not submitted.startswith("no"):
        return True
    if any(message.get(name) is not None for name in ("x-autoreply", "x-autorespond")):
        return True
    if str(message.get("precedence", "")).strip().lower() == "auto_reply":
        return True
    suppress = str(message.get("x-auto-response-suppress", "")).lower()
    return "oof" in suppress or "autoreply" in suppress


def find_bounce(message: Message) -> Bounce | None:
    """The delivery failure ``message`` reports, or ``None`` when it is not a bounce."""
    if message.get_content_type() == "multipart/report":
        report = _delivery_status(message)
        if report is not None:
            return report
    if not _from_daemon(message):
        return None
    return _free_form(message)


def _from_daemon(message: Message) -> bool:
    if str(message.get("return-path", "")).strip() == "<>":
        return True  # the null sender: only delivery reports use it (RFC 5321 §4.5.5)
    sender = str(message.get("from", "")).lower()
    return any(f"{name}@" in sender for name in _DAEMONS)


def _delivery_status(message: Message) -> Bounce | None:
    recipients: list[BouncedRecipient] = []
    original = ""
    found_report = False
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type in ("message/delivery-status", "message/global-delivery-status"):
            found_report = True
            recipients += _recipients(part)
        elif content_type in ("text/rfc822-headers", "message/rfc822", "message/global"):
            original = original or original_id(part)
    if not found_report:
        return None
    if not recipients:
        return None
    return Bounce(original_message_id=original, recipients=tuple(recipients))


def _recipients(part: Message) -> list[BouncedRecipient]:
    """Per-recipient fields of a delivery-status part: the failures, not the successes."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks: list[Message] = [block for block in payload if isinstance(block, Message)]
    else:  # the parser left it as text: read the blocks ourselves
        text = payload if isinstance(payload, str) else ""
        blocks = [HeaderParser(policy=compat32).parsestr(b) for b in re.split(r"\n\s*\n", text)]
    found: list[BouncedRecipient] = []
    for block in blocks[1:] if len(blocks) > 1 else blocks:
        action = str(block.get("action", "")).strip().lower()
        status = _status(str(block.get("status", "")))
        recipient = _address(str(block.get("final-recipient") or block.get("original-recipient")))
        if not recipient or action in ("delivered", "relayed", "expanded"):
            continue
        permanent = action == "failed" or status.startswith("5")
        reason = " ".join(str(block.get("diagnostic-code", "")).split())
        if ";" in reason:
            reason = reason.split(";", 1)[1].strip()
        found.append(BouncedRecipient(recipient, permanent, status, reason))
    return found


def _status(value: str) -> str:
    match = _STATUS.search(value)
    return match.group(0) if match else ""


def _address(value: str) -> str:
    """``rfc822; user@example.com`` → ``user@example.com``."""
    if value in ("", "None"):
        return ""
    address = value.split(";", 1)[-1].strip().strip("<>").strip()
    return address.lower() if "@" in address else ""


def original_id(part: Message) -> str:
    """The Message-ID in an attached original (``message/rfc822``) or its header alone."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        headers: Message = payload[0]
    else:
        raw = part.get_payload(decode=True)
        data = raw if isinstance(raw, bytes) else str(payload).encode("utf-8", "replace")
        headers = BytesParser(policy=compat32).parsebytes(data, headersonly=True)
    match = re.search(r"<([^<>\s]+)>", str(headers.get("message-id", "")))
    return match.group(1) if match else ""


def _free_form(message: Message) -> Bounce | None:
    """A bounce in a mail server's own words: Mailman's detectors find the addresses."""
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector tripping on odd input is "not recognised", not a crash
        return None
    if not temporary and not permanent:
        return None
    recipients = [
        BouncedRecipient(address.decode("utf-8", "replace").lower(), True) for address in permanent
    ]
    recipients += [
        BouncedRecipient(address.decode("utf-8", "replace").lower(), False)
        for address in temporary - permanent
    ]
    return Bounce(original_message_id=_quoted_id(message), recipients=tuple(recipients))


def _quoted_id(message: Message) -> str:
    """The original Message-ID a free-form bounce quotes in its text, if it does."""
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        match = _QUOTED_MSGID.search(payload.decode("utf-8", "replace"))
        if match:
            return match.group(1)
    return ""
