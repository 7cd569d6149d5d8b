"""Writing an e-mail: a draft from a person into the exact bytes the mail server gets.

Every header value goes through the standard library's header registry,
which refuses CR and LF, and is checked here first so the caller gets the
field at fault rather than a stack trace: a name or subject can never add a
header. Addresses are validated; the whole message is bounded in size.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Final

from commhub.domain.emails import EmailError, normalize_email

MAX_REFERENCES: Final = 20
"""References kept on a reply: the thread's first message and the latest ones."""
MAX_SUBJECT: Final = 500
MAX_NAME: Final = 200


class DraftError(ValueError):
    """A draft cannot be sent as written; ``field`` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    data: bytes
    content_type: str = ""


@dataclass(frozen=True, slots=True)
class Draft:
    """What a person wrote; ``in_reply_to``/``references`` come from the message answered."""

    sender: Recipient
    to: tuple[Recipient, ...]
    subject: str
    text: str
    html: str | None = None
    cc: tuple[Recipient, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    in_reply_to: str = ""
    references: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class ComposedEmail:
    message_id: str
    """Without angle brackets, as stored and matched later."""
    sender: str
    recipients: tuple[str, ...]
    raw: bytes


def compose(draft: Draft, *, now: datetime, max_bytes: int) -> ComposedEmail:
    """Build the message; raise :class:`DraftError` naming the field that cannot go out."""
    sender = _address("from", draft.sender)
    to = [_address("to", r) for r in draft.to]
    cc = [_address("cc", r) for r in draft.cc]
    if not to:
        raise DraftError("to", "at least one recipient")
    subject = _line("subject", draft.subject, MAX_SUBJECT)
    domain = sender.domain
    message = EmailMessage(policy=policy.SMTP)
    message_id = make_msgid(domain=domain)
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(now)
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    if draft.in_reply_to:
        message["In-Reply-To"] = f"<{_msgid('in_reply_to', draft.in_reply_to)}>"
        message["References"] = " ".join(f"<{m}>" for m in thread_references(draft))
    message.set_content(draft.text or "", subtype="plain", cte="quoted-printable")
    if draft.html:
        message.add_alternative(draft.html, subtype="html", cte="quoted-printable")
    for item in draft.attachments:
        _attach(message, item)
    raw = message.as_bytes(policy=policy.SMTP)
    if len(raw) > max_bytes:
        raise DraftError(
            "attachments" if draft.attachments else "text",
            f"the message is {len(raw):,} bytes; the limit is {max_bytes:,}",
        )
    recipients = tuple(dict.fromkeys(a.addr_spec for a in (*to, *cc)))
    return ComposedEmail(
        message_id=message_id.strip("<>"), sender=sender.addr_spec, recipients=recipients, raw=raw
    )


def thread_references(draft: Draft) -> tuple[str, ...]:
    """References for a reply: the parent's, then the parent, trimmed to the first and latest."""
    parent = _msgid("in_reply_to", draft.in_reply_to)
    chain = [_msgid("references", m) for m in draft.references]
    chain = [m for m in chain if m != parent]
    chain.append(parent)
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return tuple(chain)


def reply_subject(subject: str) -> str:
    """``Re: subject``, without stacking ``Re: Re:``."""
    stripped = subject.strip()
    if stripped.lower().startswith(("re:", "ответ:")):
        return stripped
    return f"Re: {stripped}" if stripped else "Re:"


def _line(name: str, value: str, limit: int) -> str:
    if "\r" in value or "\n" in value:
        raise DraftError(name, "must be one line (no line breaks)")
    if any(ord(c) < 32 and c != "\t" for c in value):
        raise DraftError(name, "control characters are not allowed")
    if len(value) > limit:
        raise DraftError(name, f"at most {limit} characters")
    return value


def _address(name: str, recipient: Recipient) -> Address:
    display = _line(f"{name}.name", recipient.name.strip(), MAX_NAME)
    try:
        addr = normalize_email(_line(name, recipient.address, 254))
    except EmailError as exc:
        raise DraftError(name, str(exc)) from None
    local, _, domain = addr.rpartition("@")
    if not local.isascii():
        raise DraftError(name, f"{addr!r}: non-ASCII mailbox names are not supported (SMTPUTF8)")
    try:
        return Address(display_name=display, username=local, domain=domain)
    except (ValueError, IndexError) as exc:
        raise DraftError(name, f"{addr!r}: {exc}") from None


def _msgid(name: str, value: str) -> str:
    bare = value.strip().strip("<>")
    if not bare or any(c.isspace() or c in "<>" for c in bare) or not bare.isprintable():
        raise DraftError(name, f"{value!r} is not a Message-ID")
    return bare


def _attach(message: EmailMessage, item: Attachment) -> None:
    filename = _line("attachments.filename", item.filename.strip(), 255)
    if not filename or "/" in filename or "\\" in filename:
        raise DraftError("attachments.filename", f"{item.filename!r} is not a file name")
    content_type = item.content_type or mimetypes.guess_type(filename)[0] or ""
    if content_type.count("/") != 1:
        content_type = "application/octet-stream"
    maintype, subtype = content_type.split("/")
    message.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=filename)


def recipients_of(values: Sequence[tuple[str, str]]) -> tuple[Recipient, ...]:
    """``(address, name)`` pairs from an API body into recipients."""
    return tuple(Recipient(address, name) for address, name in values)
