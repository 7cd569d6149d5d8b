"""Reading an e-mail: raw RFC 5322 bytes into what the card shows and threading needs.

The standard library's parser is forgiving by design (it records defects
instead of raising), so almost every message yields something; what cannot
be read at all raises :class:`EmailParseError` and is kept raw by the caller.
Bodies are decoded leniently: an unknown charset or a broken
transfer-encoding loses characters, never the message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import getaddresses, parsedate_to_datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

import html2text

from commhub.domain.bounces import Bounce, find_bounce, is_auto_reply
from commhub.domain.complaints import Complaint, find_complaint
from commhub.domain.emails import EmailError, normalize_email

MAX_HTML_TO_TEXT: Final = 1_000_000
"""HTML beyond this many characters is cut before conversion: a card needs no more."""
SUMMARY_CHARS: Final = 500
_MSGID: Final = re.compile(r"<([^<>\s]+)>")
_HEADER_LINE: Final = re.compile(rb"^[!-9;-~]+:", re.ASCII)
_CACHED_HEADER_CHARS: Final = 2_000
"""Longer header values are parsed afresh: the cache stays small whatever arrives."""


if TYPE_CHECKING:
    _Policy = EmailPolicy[EmailMessage]
else:
    _Policy = EmailPolicy


class _ReadingPolicy(_Policy):
    """``policy.default`` that parses each distinct header value once.

    The library parses a header again on every access, and reading one
    message asks for its parts' Content-Type a dozen times (body search,
    charsets, attachments): that re-parsing was almost half of the parse.
    Parsed headers are immutable strings, so sharing them is safe; the cache
    holds a few messages' worth (a parsed header with its tree is kilobytes).
    """

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):
            return value
        if len(value) > _CACHED_HEADER_CHARS:
            return super().header_fetch_parse(name, value)
        return _parsed_header(self, name, value)


@lru_cache(maxsize=256)
def _parsed_header(reading: _ReadingPolicy, name: str, value: str) -> Any:
    return EmailPolicy.header_fetch_parse(reading, name, value)


_POLICY: Final = _ReadingPolicy()


class EmailParseError(ValueError):
    """The bytes are not an e-mail message one can file; the message says why."""


@dataclass(frozen=True, slots=True)
class EmailAddress:
    address: str
    """Normalised for lookup, or as written when it does not validate."""
    name: str = ""
    valid: bool = True


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """A part a person would download; ``index`` is its place in a walk of the message."""

    index: int
    filename: str
    content_type: str
    size: int
    inline: bool = False


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    message_id: str
    """Without angle brackets; empty when the message has none."""
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    sender: EmailAddress | None
    to: tuple[EmailAddress, ...]
    cc: tuple[EmailAddress, ...]
    reply_to: tuple[EmailAddress, ...]
    subject: str
    date: datetime | None
    text: str
    html: str | None
    attachments: tuple[AttachmentInfo, ...]
    auto_reply: bool
    bounce: Bounce | None
    complaint: Complaint | None = None
    defects: int = 0

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this one answers, nearest first: In-Reply-To, then References backwards."""
        seen: dict[str, None] = dict.fromkeys(self.in_reply_to)
        seen.update(dict.fromkeys(reversed(self.references)))
        seen.pop(self.message_id, None)
        return tuple(seen)

    @property
    def summary(self) -> str:
        """The first lines of the text, for the timeline."""
        return " ".join(self.text.split())[:SUMMARY_CHARS]


def parse_email(raw: bytes) -> ParsedEmail:
    """Read ``raw``; raise :class:`EmailParseError` when it holds no message header at all."""
    if not raw.strip():
        raise EmailParseError("empty message")
    if not _HEADER_LINE.match(raw.lstrip(b"\r\n")):
        raise EmailParseError("no header: the data does not start with a 'Name: value' field")
    try:
        message = BytesParser(policy=_POLICY).parsebytes(raw)
        return _read(message)
    except EmailParseError:
        raise
    except Exception as exc:  # the parser's own bugs on hostile input end here, named
        raise EmailParseError(f"unreadable message: {type(exc).__name__}: {exc}") from None


def parse_message(raw: bytes) -> EmailMessage:
    """The parsed tree, for taking an attachment back out of stored bytes."""
    return BytesParser(policy=_POLICY).parsebytes(raw)


def _read(message: EmailMessage) -> ParsedEmail:
    if not any(message.keys()):
        raise EmailParseError("no header fields")
    senders = _addresses(message, "from")
    text, html, body_parts = _bodies(message)
    complaint = find_complaint(message)
    return ParsedEmail(
        message_id=first_msgid(_header(message, "message-id")),
        in_reply_to=msgids(_header(message, "in-reply-to")),
        references=msgids(_header(message, "references")),
        sender=senders[0] if senders else None,
        to=_addresses(message, "to"),
        cc=_addresses(message, "cc"),
        reply_to=_addresses(message, "reply-to"),
        subject=" ".join(_header(message, "subject").split()),
        date=_date(_header(message, "date")),
        text=text,
        html=html,
        attachments=tuple(_attachments(message, body_parts)),
        auto_reply=is_auto_reply(message),
        bounce=None if complaint is not None else find_bounce(message),
        complaint=complaint,
        defects=len(message.defects),
    )


def _header(message: Message, name: str) -> str:
    """A header's decoded text; a field the parser cannot decode gives its raw text."""
    try:
        value = message.get(name)
    except Exception:  # a malformed encoded-word: fall back to the undecoded text
        value = None
        for key, raw in message.raw_items():
            if key.lower() == name:
                value = raw
                break
    return "" if value is None else str(value)


def msgids(value: str) -> tuple[str, ...]:
    """The Message-IDs in a header, in order, without brackets."""
    return tuple(dict.fromkeys(_MSGID.findall(value)))


def first_msgid(value: str) -> str:
    found = msgids(value)
    if found:
        return found[0]
    bare = value.strip()
    return bare if bare and " " not in bare else ""


def _addresses(message: Message, name: str) -> tuple[EmailAddress, ...]:
    found: list[EmailAddress] = []
    for display, address in getaddresses([_header(message, name)]):
        if not address:
            continue
        try:
            found.append(EmailAddress(normalize_email(address), display.strip()))
        except EmailError:
            found.append(EmailAddress(address.strip(), display.strip(), valid=False))
    return tuple(found)


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _bodies(message: EmailMessage) -> tuple[str, str | None, set[int]]:
    """The text and HTML bodies, and the ids of the parts they came from."""
    plain = message.get_body(preferencelist=("plain",))
    rich = message.get_body(preferencelist=("html",))
    used = {id(part) for part in (plain, rich) if part is not None}
    html = _content(rich) if rich is not None else None
    if plain is not None:
        text = _content(plain)
    elif html is not None:
        text = html_to_text(html)
    else:
        text = ""
    return text, html, used


def _content(part: Message) -> str:
    """A text part's content, decoded with its charset; unknown charsets fall back to UTF-8."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = payload.decode(charset, errors="replace")
    except LookupError:
        text = payload.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n")


def html_to_text(html: str) -> str:
    """Readable text from an HTML body (links kept as text, images and scripts dropped)."""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.unicode_snob = True
    return str(converter.handle(html[:MAX_HTML_TO_TEXT])).strip()


def walk(message: Message) -> Iterator[tuple[int, Message]]:
    """Every part with its index: the index names an attachment for download."""
    yield from enumerate(message.walk())


def _attachments(message: EmailMessage, body_parts: set[int]) -> Iterator[AttachmentInfo]:
    for index, part in walk(message):
        if part.is_multipart() or id(part) in body_parts or index == 0:
            continue
        disposition = (part.get_content_disposition() or "").lower()
        content_type = part.get_content_type()
        filename = part.get_filename() or ""
        if not filename and disposition != "attachment":
            if content_type.startswith("text/") or content_type.startswith("message/"):
                continue  # a body alternative or a report part, shown as text
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        yield AttachmentInfo(
            index=index,
            filename=filename or f"part-{index}",
            content_type=content_type,
            size=size,
            inline=disposition == "inline",
        )


def attachment_item(item: AttachmentInfo) -> dict[str, Any]:
    """An attachment as stored with the message (JSON)."""
    return {
        "index": item.index,
        "filename": item.filename,
        "content_type": item.content_type,
        "size": item.size,
        "inline": item.inline,
    }


def attachment(message: Message, index: int) -> tuple[AttachmentInfo, bytes] | None:
    """The attachment at ``index`` and its decoded bytes, or ``None`` when there is none."""
    for position, part in walk(message):
        if position != index or part.is_multipart() or index == 0:
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        info = AttachmentInfo(
            index=index,
            filename=part.get_filename() or f"part-{index}",
            content_type=part.get_content_type(),
            size=len(data),
        )
        return info, data
    return None


def display(address: EmailAddress) -> str:
    """``Name <addr>`` as a person reads it."""
    if not address.name:
        return address.address
    try:
        return str(Address(display_name=address.name, addr_spec=address.address))
    except (ValueError, IndexError):
        return f"{address.name} <{address.address}>"
