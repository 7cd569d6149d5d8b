"""E-mail: send from a mailbox, read a message and its thread, triage unmatched mail."""

from __future__ import annotations

import base64
import binascii
from typing import Final
from urllib.parse import quote

from aiohttp import web

from commhub.channels import ChannelUnavailable, Mailbox
from commhub.domain.email_compose import Attachment, Recipient
from commhub.domain.email_messages import attachment, parse_message
from commhub.domain.identifiers import parse_id
from commhub.domain.roles import Permission
from commhub.models import Outbox
from commhub.services import email_sending, email_triage
from commhub.services.email_sending import EmailRequest
from commhub.services.email_triage import EmailView
from commhub.web.api import email_schemas as schemas
from commhub.web.api.contacts import region_of
from commhub.web.endpoints import endpoint, json_response, path_id, read_body, read_query
from commhub.web.keys import CHANNELS, DATABASE, HUB, principal
from commhub.web.problems import Problem, invalid

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
BASE64_GROWTH: Final = 4 / 3
JSON_SLACK: Final = 2 * 1024 * 1024
"""Room in a send request for the text, HTML and JSON around the attachments."""


@endpoint(
    "Send an e-mail from a mailbox to a contact. The message is on the card at once as "
    "'queued' and is sent in the background; its status follows (sent, or failed with the "
    "server's reason). Send an Idempotency-Key header to make a retry send once. With "
    "reply_to_id it answers that message, with threading headers.",
    permission=Permission.EMAIL_SEND,
    tag="email",
    body=schemas.EmailCreate,
    response=schemas.OutboxOut,
    status=202,
)
async def send_email(request: web.Request) -> web.StreamResponse:
    mailers = _mailers(request)
    limit = max(m.max_message_bytes for m in mailers.values())
    body = await read_body(
        request, schemas.EmailCreate, max_bytes=int(limit * BASE64_GROWTH) + JSON_SLACK
    )
    mailer = _mailer(mailers, body.mailbox)
    key = request.headers.get(IDEMPOTENCY_HEADER, "")
    if len(key) > 64 or not key.isprintable():
        raise invalid(IDEMPOTENCY_HEADER, "at most 64 printable characters")
    email_request = EmailRequest(
        to=tuple(Recipient(r.address, r.name) for r in body.to),
        cc=tuple(Recipient(r.address, r.name) for r in body.cc),
        subject=body.subject,
        text=body.text,
        html=body.html,
        attachments=tuple(_attachment(i, a) for i, a in enumerate(body.attachments)),
        contact_id=body.contact_id,
        reply_to_id=body.reply_to_id,
        key=f"api:{principal(request).user_id}:{key}" if key else "",
    )
    row, created = await email_sending.send(
        request.app[DATABASE],
        mailer,
        email_request,
        asked=body.model_dump(mode="json"),
        user_id=principal(request).user_id,
        region=region_of(request, None),
    )
    if created:
        request.app[HUB].dispatch_now(row.source)
    return json_response(outbox_out(row), status=202 if created else 200)


def _mailers(request: web.Request) -> dict[str, Mailbox]:
    mailers = {n: c for n, c in request.app[CHANNELS].items() if isinstance(c, Mailbox)}
    if not mailers:
        raise ChannelUnavailable("no mailbox is configured (COMMHUB_CHANNELS_FILE)")
    return mailers


def _mailer(mailers: dict[str, Mailbox], name: str | None) -> Mailbox:
    if name is None:
        if len(mailers) > 1:
            raise invalid("mailbox", f"choose one of: {', '.join(sorted(mailers))}")
        return next(iter(mailers.values()))
    found = mailers.get(name)
    if found is None:
        raise invalid("mailbox", f"no mailbox named {name!r}")
    return found


def _attachment(index: int, item: schemas.AttachmentIn) -> Attachment:
    try:
        data = base64.b64decode(item.content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"attachments.{index}.content_base64", "not valid base64") from None
    return Attachment(filename=item.filename, data=data, content_type=item.content_type)


def outbox_out(row: Outbox) -> schemas.OutboxOut:
    return schemas.OutboxOut(
        id=row.id,
        key=row.key,
        state=row.state,
        mailbox=row.source,
        interaction_id=row.interaction_id,
        contact_id=row.contact_id,
        recipients=list(row.recipients.get("to", [])),
        attempts=row.attempts,
        last_error=row.last_error,
        reply=row.reply,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


@endpoint(
    "One e-mail as the card shows it: headers, text (HTML converted), the original HTML, "
    "attachments with download links, delivery state, and the messages of its thread.",
    permission=Permission.CONTACTS_READ,
    tag="email",
    response=schemas.EmailOut,
)
async def get_email(request: web.Request) -> web.StreamResponse:
    return json_response(
        email_out(await email_triage.email(request.app[DATABASE], path_id(request)))
    )


def email_out(found: EmailView) -> schemas.EmailOut:
    email, interaction, outbox = found.email, found.interaction, found.outbox
    base = f"/api/v1/emails/{interaction.id}/attachments"
    return schemas.EmailOut(
        interaction_id=interaction.id,
        contact_id=interaction.contact_id,
        direction=interaction.direction,
        status=interaction.status,
        kind=email.kind,
        mailbox=email.mailbox,
        message_id=email.message_id,
        in_reply_to=email.in_reply_to,
        references=email.references.split(),
        thread_id=email.thread_id,
        sender=email.sender,
        to=list(email.recipients.get("to", [])),
        cc=list(email.recipients.get("cc", [])),
        reply_to=list(email.recipients.get("reply_to", [])),
        subject=interaction.subject,
        text=email.text,
        html=email.html,
        attachments=[
            schemas.AttachmentOut(
                index=item.get("index"),
                filename=str(item.get("filename", "")),
                content_type=str(item.get("content_type", "")),
                size=int(item.get("size", 0)),
                url=f"{base}/{item['index']}" if item.get("index") is not None else None,
            )
            for item in email.attachments.get("items", [])
        ],
        size=email.size,
        truncated=email.truncated,
        occurred_at=interaction.occurred_at,
        outbox=outbox_out(outbox) if outbox is not None else None,
        thread=[
            schemas.ThreadItem(
                interaction_id=i.id,
                direction=i.direction,
                status=i.status,
                sender=e.sender,
                subject=i.subject,
                occurred_at=i.occurred_at,
            )
            for e, i in found.thread
        ],
    )


@endpoint(
    "Download one attachment of an e-mail, taken from the message as it was received.",
    permission=Permission.CONTACTS_READ,
    tag="email",
    content_type="application/octet-stream",
)
async def get_attachment(request: web.Request) -> web.StreamResponse:
    interaction_id = path_id(request)
    index = path_id(request, "index")
    email = await email_triage.stored_email(request.app[DATABASE], interaction_id)
    found = attachment(parse_message(email.raw), index)
    if found is None:
        raise Problem(404, f"e-mail {interaction_id} has no attachment {index}")
    info, data = found
    return web.Response(
        body=data,
        content_type="application/octet-stream",
        headers={
            "Content-Disposition": _disposition(info.filename),
            "X-Content-Type-Options": "nosniff",
            "X-Original-Content-Type": info.content_type,
        },
    )


def _disposition(filename: str) -> str:
    """An attachment header safe for any file name (RFC 6266 with an ASCII fallback)."""

    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


@endpoint(
    "The e-mail exactly as received or sent (message/rfc822), for a mail program.",
    permission=Permission.CONTACTS_READ,
    tag="email",
    content_type="message/rfc822",
)
async def get_raw(request: web.Request) -> web.StreamResponse:
    interaction_id = path_id(request)
    email = await email_triage.stored_email(request.app[DATABASE], interaction_id)
    return web.Response(
        body=email.raw,
        content_type="message/rfc822",
        headers={"Content-Disposition": f'attachment; filename="{interaction_id}.eml"'},
    )


@endpoint(
    "Mail from senders on no card (or on several), newest first, waiting for a person "
    "to assign it to a contact or set it aside.",
    permission=Permission.EMAIL_TRIAGE,
    tag="email",
    query=schemas.PageQuery,
    response=schemas.UnmatchedPage,
)
async def list_unmatched(request: web.Request) -> web.StreamResponse:
    query = read_query(request, schemas.PageQuery)
    rows = await email_triage.unmatched(
        request.app[DATABASE], after_id=id_cursor(query.cursor), limit=query.limit
    )
    items = [
        schemas.UnmatchedOut(
            interaction_id=i.id,
            sender=e.sender,
            from_address=i.from_address,
            subject=i.subject,
            summary=i.summary,
            occurred_at=i.occurred_at,
            candidates=[int(c) for c in i.extra.get("candidates", [])],
        )
        for e, i in rows
    ]
    next_cursor = str(rows[-1][0].id) if len(rows) == query.limit else None
    return json_response(schemas.UnmatchedPage(items=items, next_cursor=next_cursor))


def id_cursor(text: str | None) -> int | None:
    if text is None:
        return None
    found = parse_id(text)
    if found is None:
        raise invalid("query.cursor", f"invalid cursor {text[:40]!r}")
    return found


@endpoint(
    "Put an unmatched e-mail (and the rest of its thread) on a contact's card; by default "
    "the sender's address joins the card so their next mail finds it.",
    permission=Permission.EMAIL_TRIAGE,
    tag="email",
    body=schemas.AssignIn,
    response=schemas.EmailOut,
)
async def assign_email(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.AssignIn)
    found = await email_triage.assign(
        request.app[DATABASE], path_id(request), body.contact_id, add_address=body.add_address
    )
    return json_response(email_out(found))


@endpoint(
    "Set an unmatched e-mail aside (spam, not a customer): it leaves the unmatched list.",
    permission=Permission.EMAIL_TRIAGE,
    tag="email",
    response=schemas.EmailOut,
)
async def dismiss_email(request: web.Request) -> web.StreamResponse:
    found = await email_triage.dismiss(request.app[DATABASE], path_id(request))
    return json_response(email_out(found))
