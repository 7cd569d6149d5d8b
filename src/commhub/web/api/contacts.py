"""Contacts: create, edit, search, merge, and the client card with its timeline."""

from __future__ import annotations

import phonenumbers
from aiohttp import web

from commhub.domain.contacts import ContactDraft, read_consent, read_emails, read_phones, read_tags
from commhub.domain.identifiers import parse_id
from commhub.domain.pagination import Cursor
from commhub.domain.roles import Permission
from commhub.services import contacts
from commhub.web.api import schemas
from commhub.web.api.views import contact_out, interaction_page
from commhub.web.endpoints import endpoint, json_response, path_id, read_body, read_query
from commhub.web.keys import DATABASE, SETTINGS, principal
from commhub.web.problems import invalid


def region_of(request: web.Request, requested: str | None) -> str:
    region = (requested or request.app[SETTINGS].phone_region).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise invalid("region", f"unknown region {requested!r}; use an ISO code such as RU")
    return region


@endpoint(
    "Search contacts by name, company, tag, phone (any format) or e-mail.",
    permission=Permission.CONTACTS_READ,
    tag="contacts",
    query=schemas.ContactSearch,
    response=schemas.ContactList,
)
async def search_contacts(request: web.Request) -> web.StreamResponse:
    query = read_query(request, schemas.ContactSearch)
    before_id: int | None = None
    if query.cursor is not None:
        before_id = parse_id(query.cursor)
        if before_id is None:
            raise invalid("query.cursor", "invalid cursor")
    found = await contacts.search_contacts(
        request.app[DATABASE],
        region=region_of(request, query.region),
        query=query.q,
        phone=query.phone,
        email=query.email,
        company=query.company,
        tag=query.tag,
        before_id=before_id,
        limit=query.limit,
    )
    next_cursor = str(found[-1].id) if len(found) == query.limit else None
    return json_response(
        schemas.ContactList(items=[contact_out(v) for v in found], next_cursor=next_cursor)
    )


@endpoint(
    "Create a contact.",
    permission=Permission.CONTACTS_WRITE,
    tag="contacts",
    body=schemas.ContactCreate,
    response=schemas.ContactOut,
    status=201,
)
async def create_contact(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.ContactCreate)
    region = region_of(request, body.region)
    draft = ContactDraft(
        name=body.name,
        company=body.company,
        phones=read_phones(body.phones, region),
        emails=read_emails(body.emails),
        tags=read_tags(body.tags),
        consents=tuple(
            read_consent(c.channel, c.purpose, c.granted, i) for i, c in enumerate(body.consents)
        ),
        extra=body.extra,
    )
    view = await contacts.create_contact(
        request.app[DATABASE], draft, owner_id=body.owner_id, source=_source(request)
    )
    response = json_response(contact_out(view), status=201)
    response.headers["Location"] = f"/api/v1/contacts/{view.id}"
    return response


@endpoint(
    "Edit a contact; lists given replace the whole list.",
    permission=Permission.CONTACTS_WRITE,
    tag="contacts",
    body=schemas.ContactUpdate,
    response=schemas.ContactOut,
)
async def update_contact(request: web.Request) -> web.StreamResponse:
    contact_id = path_id(request)
    body = await read_body(request, schemas.ContactUpdate)
    region = region_of(request, body.region)
    changes = contacts.ContactChanges(
        name=body.name,
        company=body.company,
        owner_id=body.owner_id or None,
        clear_owner=body.owner_id == 0,
        phones=None if body.phones is None else read_phones(body.phones, region),
        emails=None if body.emails is None else read_emails(body.emails),
        tags=None if body.tags is None else read_tags(body.tags),
        consents=None
        if body.consents is None
        else tuple(
            read_consent(c.channel, c.purpose, c.granted, i) for i, c in enumerate(body.consents)
        ),
        extra=body.extra,
    )
    view = await contacts.update_contact(
        request.app[DATABASE], contact_id, changes, source=_source(request)
    )
    return json_response(contact_out(view))


@endpoint(
    "The client card: the contact and the first page of its timeline.",
    permission=Permission.CONTACTS_READ,
    tag="contacts",
    query=schemas.TimelineQuery,
    response=schemas.CardOut,
)
async def get_card(request: web.Request) -> web.StreamResponse:
    contact_id = path_id(request)
    query = read_query(request, schemas.TimelineQuery)
    after = None if query.cursor is None else Cursor.decode(query.cursor)
    card = await contacts.card(request.app[DATABASE], contact_id, after=after, limit=query.limit)
    return json_response(
        schemas.CardOut(
            contact=contact_out(card.contact),
            timeline=interaction_page(card.timeline, card.next_cursor),
        )
    )


@endpoint(
    "A contact's timeline, newest first, keyset-paginated with next_cursor.",
    permission=Permission.CONTACTS_READ,
    tag="contacts",
    query=schemas.TimelineQuery,
    response=schemas.InteractionPage,
)
async def get_timeline(request: web.Request) -> web.StreamResponse:
    contact_id = path_id(request)
    query = read_query(request, schemas.TimelineQuery)
    after = None if query.cursor is None else Cursor.decode(query.cursor)
    card = await contacts.card(request.app[DATABASE], contact_id, after=after, limit=query.limit)
    return json_response(interaction_page(card.timeline, card.next_cursor))


@endpoint(
    "Merge other contacts into this one: points, tags, consents and interactions move here.",
    permission=Permission.CONTACTS_MERGE,
    tag="contacts",
    body=schemas.MergeRequest,
    response=schemas.ContactOut,
)
async def merge_contacts(request: web.Request) -> web.StreamResponse:
    target_id = path_id(request)
    body = await read_body(request, schemas.MergeRequest)
    view = await contacts.merge_contacts(request.app[DATABASE], target_id, body.source_ids)
    return json_response(contact_out(view))


@endpoint(
    "The contact's consent ledger: every change, oldest first, with its source and evidence.",
    permission=Permission.CONTACTS_READ,
    tag="contacts",
    response=schemas.ConsentHistory,
)
async def consent_history(request: web.Request) -> web.StreamResponse:
    rows = await contacts.consent_history(request.app[DATABASE], path_id(request))
    return json_response(
        schemas.ConsentHistory(
            items=[
                schemas.ConsentEventOut(
                    channel=r.channel,
                    purpose=r.purpose,
                    granted=r.granted,
                    source=r.source,
                    evidence=r.evidence,
                    recorded_by_id=r.recorded_by_id,
                    recorded_at=r.recorded_at,
                )
                for r in rows
            ]
        )
    )


def _source(request: web.Request) -> str:
    caller = principal(request)
    return f"api:{caller.username}"
