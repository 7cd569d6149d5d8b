"""Contacts in the console: search, create, and the client card with its timeline.

The card is one page: the contact's fields, phones (each with a call
button), e-mails, open follow-ups, the actions (SMS, e-mail, note, edit) and
the timeline; further timeline pages arrive as HTML fragments as the
operator scrolls (``card.js``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import Mailer
from commhub.domain.contacts import ContactDraft, read_emails, read_phones, read_tags
from commhub.domain.identifiers import parse_id
from commhub.domain.pagination import Cursor, CursorError
from commhub.domain.roles import Permission
from commhub.models import Interaction
from commhub.services import contacts
from commhub.services.errors import InvalidInput, NotFound
from commhub.store import calls as call_store
from commhub.store import card_details, follow_ups
from commhub.store import contacts as contact_store
from commhub.store import users as user_store
from commhub.web.endpoints import endpoint, path_id
from commhub.web.keys import CHANNELS, DATABASE, HUB, SETTINGS, principal
from commhub.web.ui import flash
from commhub.web.ui.forms import field_list, read_form, refusals_shown_at
from commhub.web.ui.render import html, page, render_text, viewer

TIMELINE_PAGE = 25
SEARCH_LIMIT = 50


async def timeline_context(session: AsyncSession, rows: Sequence[Interaction]) -> dict[str, Any]:
    """What the timeline template needs beside the rows: texts, bodies, operator names."""
    return {
        "rows": rows,
        "sms": await card_details.sms_details(session, [r.id for r in rows if r.channel == "sms"]),
        "emails": await card_details.email_details(
            session, [r.id for r in rows if r.channel == "email"]
        ),
        "operators": await user_store.names_of(session, [r.operator_id for r in rows]),
        "extensions": await _extension_names(session, rows),
    }


async def _extension_names(session: AsyncSession, rows: Sequence[Interaction]) -> dict[str, str]:
    """Who sits at each extension that talked on these calls, for "Anna → Boris" lines."""
    extensions = {
        str(ext)
        for row in rows
        if row.channel == "call"
        for ext in (row.extra or {}).get("operators") or ()
    }
    ids = await call_store.users_by_extension(session, extensions)
    names = await user_store.names_of(session, ids.values())
    return {ext: names[user_id] for ext, user_id in ids.items() if user_id in names}


def _next_url(contact_id: int, cursor: Cursor | None) -> str:
    return "" if cursor is None else f"/contacts/{contact_id}/timeline?cursor={cursor.encode()}"


@endpoint("Client card.", permission=Permission.CONTACTS_READ, tag="pages")
async def card_page(request: web.Request) -> web.StreamResponse:
    contact_id = path_id(request)
    async with request.app[DATABASE]() as session:
        try:
            card = await contacts.card(session, contact_id, after=None, limit=TIMELINE_PAGE)
        except NotFound as exc:
            if exc.merged_into is not None:
                raise web.HTTPSeeOther(f"/contacts/{exc.merged_into}") from None
            raise
        timeline = await timeline_context(session, card.timeline)
        due = await follow_ups.open_for_contact(session, contact_id)
        users = {u.id: u for u in await user_store.all_users(session)}
    hub = request.app[HUB]
    mailboxes = [c.name for c in request.app[CHANNELS].values() if isinstance(c, Mailer)]
    return await page(
        request,
        "card.html",
        section="contacts",
        contact=card.contact,
        timeline=timeline,
        next_url=_next_url(contact_id, card.next_cursor),
        follow_ups=due,
        users=users,
        owner=users.get(card.contact.owner_id) if card.contact.owner_id else None,
        sms_gateways=[g.name for g in hub.sms_gateways],
        mailboxes=mailboxes,
        form_key=secrets.token_urlsafe(12),
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
    async with request.app[DATABASE]() as session:
        card = await contacts.card(session, contact_id, after=after, limit=TIMELINE_PAGE)
        timeline = await timeline_context(session, card.timeline)
    text = render_text(
        me.language,
        "timeline.html",
        viewer=me,
        fmt=me.fmt,
        contact_id=contact_id,
        timeline=timeline,
        next_url=_next_url(contact_id, card.next_cursor),
    )
    return html(text)


@endpoint("Find contacts.", permission=Permission.CONTACTS_READ, tag="pages")
async def contacts_page(request: web.Request) -> web.StreamResponse:
    query = {k: request.query.get(k, "").strip()[:300] for k in ("q", "phone", "email", "tag")}
    found: list[Any] = []
    error = ""
    if any(query.values()):
        async with request.app[DATABASE]() as session:
            try:
                found = await contacts.search_contacts(
                    session,
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
        async with request.app[DATABASE]() as session:
            view = await contacts.create_contact(
                session, draft, owner_id=principal(request).user_id, source="console"
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
        async with request.app[DATABASE]() as session:
            await contacts.update_contact(session, contact_id, changes, source="console")
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
    async with request.app[DATABASE]() as session:
        body = await card_details.email_html(session, interaction_id)
    if body is None:
        raise web.HTTPNotFound(text=f"no HTML body for e-mail {interaction_id}")
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
    async with request.app[DATABASE]() as session:
        messages = await card_details.thread(session, thread_id)
        if not messages:
            raise NotFound("e-mail thread", thread_id)
        contact_ids = {m.contact_id for m in messages if m.contact_id is not None}
        names = await contact_store.names_of(session, contact_ids)
    last = messages[-1]
    contact_id = last.contact_id or next(iter(sorted(contact_ids)), None)
    # A reply goes to whoever is on the other side of the latest message.
    reply_to = last.from_address if last.direction == "in" else last.to_address
    subject = last.subject if last.subject.lower().startswith("re:") else f"Re: {last.subject}"
    mailboxes = [c.name for c in request.app[CHANNELS].values() if isinstance(c, Mailer)]
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
