"""Contacts in the console: search, create, and the client card with its timeline.

The card is one page: the contact's fields, phones (each with a call
button), e-mails, open follow-ups, the actions (SMS, e-mail, note, edit) and
the timeline; further timeline pages arrive as HTML fragments as the
operator scrolls (``card.js``).
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from commhub.channels import Mailbox
from commhub.domain.contacts import ContactDraft, read_emails, read_phones, read_tags
from commhub.domain.identifiers import parse_id
from commhub.domain.pagination import Cursor, CursorError
from commhub.domain.roles import Permission
from commhub.services import cards, contacts
from commhub.services.errors import InvalidInput, NotFound
from commhub.web.endpoints import endpoint, path_id
from commhub.web.keys import CHANNELS, DATABASE, HUB, SETTINGS, principal
from commhub.web.ui import flash
from commhub.web.ui.forms import field_list, read_form, refusals_shown_at
from commhub.web.ui.render import html, page, render_text, viewer

TIMELINE_PAGE = 25
SEARCH_LIMIT = 50


def _next_url(contact_id: int, cursor: Cursor | None) -> str:
    return "" if cursor is None else f"/contacts/{contact_id}/timeline?cursor={cursor.encode()}"


@endpoint("Client card.", permission=Permission.CONTACTS_READ, tag="pages")
async def card_page(request: web.Request) -> web.StreamResponse:
    contact_id = path_id(request)
    try:
        shown = await cards.card_page(request.app[DATABASE], contact_id, limit=TIMELINE_PAGE)
    except NotFound as exc:
        if exc.merged_into is not None:
            raise web.HTTPSeeOther(f"/contacts/{exc.merged_into}") from None
        raise
    card, users = shown.card, shown.users
    hub = request.app[HUB]
    mailboxes = [c.name for c in request.app[CHANNELS].values() if isinstance(c, Mailbox)]
    return await page(
        request,
        "card.html",
        section="contacts",
        contact=card.contact,
        timeline=shown.timeline,
        next_url=_next_url(contact_id, card.next_cursor),
        follow_ups=shown.follow_ups,
        users=users,
        owner=users.get(card.contact.owner_id) if card.contact.owner_id else None,
        sms_gateways=[g.name for g in hub.sms_gateways],
        mailboxes=mailboxes,
        form_key=secrets.token_urlsafe(12),
        deals=shown.deals,
    )


@endpoint(
    "One more page of a card's timeline (HTML).", permission=Permission.CONTACTS_READ, tag="pages"
)
async def timeline_fragment(request: web.Request) -> web.StreamResponse:
    contact_id = path_id(request)
    raw = request.query.get("cursor", "")
    try:
        after = Cursor.decode(raw)
    except CursorError:
        raise web.HTTPUnprocessableEntity(text="bad cursor") from None
    me = await viewer(request)
    more = await cards.timeline_page(
        request.app[DATABASE], contact_id, after=after, limit=TIMELINE_PAGE
    )
    text = render_text(
        me.language,
        "timeline.html",
        viewer=me,
        fmt=me.fmt,
        contact_id=contact_id,
        timeline=more.timeline,
        next_url=_next_url(contact_id, more.card.next_cursor),
    )
    return html(text)


@endpoint("Find contacts.", permission=Permission.CONTACTS_READ, tag="pages")
async def contacts_page(request: web.Request) -> web.StreamResponse:
    query = {k: request.query.get(k, "").strip()[:300] for k in ("q", "phone", "email", "tag")}
    found: list[Any] = []
    error = ""
    if any(query.values()):
        try:
            found = await contacts.search_contacts(
                request.app[DATABASE],
                region=request.app[SETTINGS].phone_region,
                query=query["q"] or None,
                phone=query["phone"] or None,
                email=query["email"] or None,
                tag=query["tag"] or None,
                limit=SEARCH_LIMIT,
            )
        except InvalidInput as exc:  # an e-mail address that is none
            error = str(exc)
    return await page(
        request,
        "contacts.html",
        section="contacts",
        query=query,
        found=found,
        error=error,
        searched=any(query.values()),
        limit=SEARCH_LIMIT,
    )


@endpoint("Create a contact from a form.", permission=Permission.CONTACTS_WRITE, tag="pages")
async def create_contact(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    region = request.app[SETTINGS].phone_region
    async with refusals_shown_at("/contacts"):
        draft = ContactDraft(
            name=form.get("name", ""),
            company=form.get("company") or None,
            phones=read_phones(field_list(form, "phones"), region),
            emails=read_emails(field_list(form, "emails")),
            tags=read_tags(field_list(form, "tags")),
        )
        view = await contacts.create_contact(
            request.app[DATABASE], draft, owner_id=principal(request).user_id, source="console"
        )
    raise flash.redirect(f"/contacts/{view.id}", "Contact created.")


@endpoint("Edit a contact from its card.", permission=Permission.CONTACTS_WRITE, tag="pages")
async def edit_contact(request: web.Request) -> web.StreamResponse:
    contact_id = path_id(request)
    form = await read_form(request)
    region = request.app[SETTINGS].phone_region
    back = f"/contacts/{contact_id}"
    async with refusals_shown_at(back):
        owner = form.get("owner_id", "")
        changes = contacts.ContactChanges(
            name=form.get("name", ""),
            company=form.get("company", ""),
            owner_id=parse_id(owner) if owner != "0" else None,
            clear_owner=owner in ("", "0"),
            phones=read_phones(field_list(form, "phones"), region),
            emails=read_emails(field_list(form, "emails")),
            tags=read_tags(field_list(form, "tags")),
        )
        await contacts.update_contact(request.app[DATABASE], contact_id, changes, source="console")
    raise flash.redirect(back, "Contact saved.")


MAIL_HTML_POLICY = (
    # A unique origin with nothing allowed: no script, no form, no request to the
    # sender's servers (tracking pixels, remote fonts) — only the markup and its styles.
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
)


@endpoint(
    "An e-mail's HTML body, sandboxed, for the card's frame.",
    permission=Permission.CONTACTS_READ,
    tag="pages",
)
async def email_html(request: web.Request) -> web.StreamResponse:
    interaction_id = path_id(request)
    body = await cards.email_html(request.app[DATABASE], interaction_id)
    return web.Response(
        text=body,
        content_type="text/html",
        headers={
            "Content-Security-Policy": MAIL_HTML_POLICY,
            "X-Frame-Options": "SAMEORIGIN",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "private, max-age=300",
        },
    )


@endpoint(
    "An e-mail thread, oldest first, with a reply form.",
    permission=Permission.CONTACTS_READ,
    tag="pages",
)
async def email_thread(request: web.Request) -> web.StreamResponse:
    thread_id = path_id(request)
    found = await cards.thread(request.app[DATABASE], thread_id)
    messages, names = found.messages, found.names
    contact_ids = {m.contact_id for m in messages if m.contact_id is not None}
    last = messages[-1]
    contact_id = last.contact_id or next(iter(sorted(contact_ids)), None)
    # A reply goes to whoever is on the other side of the latest message.
    reply_to = last.from_address if last.direction == "in" else last.to_address
    subject = last.subject if last.subject.lower().startswith("re:") else f"Re: {last.subject}"
    mailboxes = [c.name for c in request.app[CHANNELS].values() if isinstance(c, Mailbox)]
    return await page(
        request,
        "thread.html",
        section="contacts",
        messages=messages,
        names=names,
        contact_id=contact_id,
        reply_to=reply_to,
        reply_subject=subject.strip(),
        reply_to_id=last.interaction_id,
        mailboxes=mailboxes,
        form_key=secrets.token_urlsafe(12),
    )
