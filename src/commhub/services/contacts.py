"""Contact use cases: create, edit, find, merge, and read the card.

Each function opens its own session and commits once at the end, so a
rejected change leaves nothing half-written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain import phones
from commhub.domain.contacts import ConsentChoice, ContactDraft, ContactView, name_key
from commhub.domain.emails import EmailError, normalize_email
from commhub.domain.pagination import Cursor
from commhub.models import ConsentEvent, Contact, Interaction, User, utcnow
from commhub.services.database import Database
from commhub.services.errors import InvalidInput, NotFound
from commhub.store import contact_points
from commhub.store import contacts as store
from commhub.store import interactions as interaction_store

MAX_EXTRA_FIELDS = 100


@dataclass(frozen=True, slots=True)
class ContactChanges:
    """A partial edit: ``None`` leaves a field as it is; lists replace the whole set."""

    name: str | None = None
    company: str | None = None
    owner_id: int | None = None
    clear_owner: bool = False
    phones: tuple[phones.Phone, ...] | None = None
    emails: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    consents: tuple[ConsentChoice, ...] | None = None
    extra: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Card:
    contact: ContactView
    timeline: Sequence[Interaction]
    next_cursor: Cursor | None


async def create_contact(
    db: Database, draft: ContactDraft, *, owner_id: int | None, source: str
) -> ContactView:
    """Save a new contact with its points, tags and consents; commit."""
    async with db() as session:
        if not draft.name.strip() and not draft.phones and not draft.emails:
            raise InvalidInput("name", "a contact needs a name, a phone or an e-mail")
        await _check_owner(session, owner_id)
        _check_extra(draft.extra)
        contact = Contact(
            name=" ".join(draft.name.split()),
            name_key=name_key(draft.name),
            company_id=await store.company_id(session, draft.company),
            owner_id=owner_id,
            extra=dict(draft.extra),
        )
        session.add(contact)
        await session.flush()
        await store.add_points(session, contact.id, draft.phones, draft.emails)
        await store.add_tags(session, contact.id, draft.tags)
        await store.record_consents(session, contact.id, draft.consents, source)
        await session.commit()
        return await _view(session, contact.id)


async def update_contact(
    db: Database, contact_id: int, changes: ContactChanges, *, source: str
) -> ContactView:
    """Apply a partial edit; consents given are recorded with ``source``; commit."""
    async with db() as session:
        contact = await _live(session, contact_id)
        if changes.name is not None:
            contact.name = " ".join(changes.name.split())
            contact.name_key = name_key(changes.name)
        if changes.company is not None:
            contact.company_id = await store.company_id(session, changes.company)
        if changes.clear_owner:
            contact.owner_id = None
        elif changes.owner_id is not None:
            await _check_owner(session, changes.owner_id)
            contact.owner_id = changes.owner_id
        if changes.extra is not None:
            _check_extra(changes.extra)
            contact.extra = dict(changes.extra)
        if changes.phones is not None:
            await store.remove_points(
                session, contact_id, contact_points.PHONE, [p.e164 for p in changes.phones]
            )
            await store.add_points(session, contact_id, changes.phones, ())
        if changes.emails is not None:
            await store.remove_points(session, contact_id, contact_points.EMAIL, changes.emails)
            await store.add_points(session, contact_id, (), changes.emails)
        if changes.tags is not None:
            await store.set_tags(session, contact_id, changes.tags)
        if changes.consents is not None:
            await store.record_consents(session, contact_id, changes.consents, source)
        contact.updated_at = utcnow()
        await session.commit()
        return await _view(session, contact_id)


async def _view(session: AsyncSession, contact_id: int) -> ContactView:
    view = await store.load(session, contact_id)
    if view is None:
        raise NotFound("contact", contact_id)
    if view.merged_into_id is not None:
        raise NotFound("contact", contact_id, merged_into=view.merged_into_id)
    return view


async def card(db: Database, contact_id: int, *, after: Cursor | None, limit: int) -> Card:
    """The client card: the contact and one page of its timeline, newest first."""
    async with db() as session:
        view = await _view(session, contact_id)
        rows = await interaction_store.timeline(session, contact_id, after=after, limit=limit)
        return Card(
            contact=view, timeline=rows, next_cursor=interaction_store.cursor_after(rows, limit)
        )


async def search_contacts(
    db: Database,
    *,
    region: str,
    query: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    company: str | None = None,
    tag: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[ContactView]:
    """Contacts matching all given filters; a phone may be written in any format."""
    async with db() as session:
        ids: list[int] | None = None
        if phone:
            found = phones.read_number(phone, region)
            ids = []
            if found.searchable and found.match_key is not None:
                candidates = await contact_points.phone_candidates(session, found.match_key)
                ids = phones.decide(found, candidates)
        if email:
            try:
                owners = await contact_points.email_owners(session, normalize_email(email))
            except EmailError as exc:
                raise InvalidInput("email", str(exc)) from None
            ids = owners if ids is None else [i for i in ids if i in set(owners)]
        matched = await store.search_ids(
            session,
            ids=ids,
            name=query,
            company=company,
            tag=tag,
            before_id=before_id,
            limit=limit,
        )
        return await store.load_many(session, matched)


async def merge_contacts(db: Database, target_id: int, source_ids: Sequence[int]) -> ContactView:
    """Fold ``source_ids`` into ``target_id``: one card with everything; commit."""
    async with db() as session:
        await _live(session, target_id)
        if not source_ids:
            raise InvalidInput("source_ids", "name at least one contact to merge")
        for source_id in dict.fromkeys(source_ids):
            if source_id == target_id:
                raise InvalidInput("source_ids", "a contact cannot be merged into itself")
            await _live(session, source_id, field="source_ids")
        for source_id in dict.fromkeys(source_ids):
            await store.merge_into(session, target_id, source_id)
        await session.commit()
        return await _view(session, target_id)


async def _live(session: AsyncSession, contact_id: int, field: str | None = None) -> Contact:
    contact = await session.get(Contact, contact_id)
    if contact is None or contact.merged_into_id is not None:
        if field is not None:
            raise InvalidInput(field, f"contact {contact_id} does not exist or was merged")
        merged = None if contact is None else contact.merged_into_id
        raise NotFound("contact", contact_id, merged_into=merged)
    return contact


async def _check_owner(session: AsyncSession, owner_id: int | None) -> None:
    if owner_id is not None and await session.get(User, owner_id) is None:
        raise InvalidInput("owner_id", f"user {owner_id} does not exist")


def _check_extra(extra: Mapping[str, str]) -> None:
    if len(extra) > MAX_EXTRA_FIELDS:
        raise InvalidInput("extra", f"at most {MAX_EXTRA_FIELDS} extra fields")


async def consent_history(db: Database, contact_id: int) -> list[ConsentEvent]:
    """Every change of the contact's consent, oldest first: who, when, through what, why."""
    async with db() as session:
        if await session.get(Contact, contact_id) is None:
            raise NotFound("contact", contact_id)
        rows = await session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.contact_id == contact_id)
            .order_by(ConsentEvent.recorded_at, ConsentEvent.id)
        )
        return list(rows)
