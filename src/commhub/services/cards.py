"""The client card as the console shows it: the contact, a timeline page with what each
row needs beside it (SMS texts, e-mail bodies, operator names), follow-ups, threads.

One read each; the page gets values, never a session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.interactions import Direction, Medium, NewInteraction, Status
from commhub.domain.pagination import Cursor
from commhub.models import FollowUp, Interaction, User, utcnow
from commhub.services import contacts, deal_views
from commhub.services.database import Database
from commhub.services.errors import NotFound
from commhub.store import calls as call_store
from commhub.store import card_details, follow_ups
from commhub.store import contacts as contact_store
from commhub.store import interactions as interaction_store
from commhub.store import users as user_store
from commhub.store.card_details import EmailDetail, SmsDetail, ThreadMessage


@dataclass(frozen=True, slots=True)
class Timeline:
    """One page of a card's timeline with what its rows show beside the interaction."""

    rows: Sequence[Interaction]
    sms: dict[int, SmsDetail]
    """By interaction id: the text, its encoding and segments."""
    emails: dict[int, EmailDetail]
    """By interaction id: the sender, the text, the thread it belongs to."""
    operators: dict[int, str]
    """Operator names by user id."""
    extensions: dict[str, str]
    """Who sits at each extension that talked on these calls."""


@dataclass(frozen=True, slots=True)
class CardPage:
    card: contacts.Card
    timeline: Timeline
    follow_ups: Sequence[FollowUp]
    users: dict[int, User]
    deals: deal_views.DealList
    """The contact's deals, open ones first (the card shows the open ones)."""


@dataclass(frozen=True, slots=True)
class TimelinePage:
    card: contacts.Card
    timeline: Timeline


@dataclass(frozen=True, slots=True)
class Thread:
    messages: list[ThreadMessage]
    names: dict[int, str]
    """Contact names by id, for each message's card."""


async def card_page(db: Database, contact_id: int, *, limit: int) -> CardPage:
    """The card with its first timeline page (:class:`NotFound` names a merge's target)."""
    card = await contacts.card(db, contact_id, after=None, limit=limit)
    async with db() as session:
        timeline = await _timeline(session, card.timeline)
        due = await follow_ups.open_for_contact(session, contact_id)
        users = {u.id: u for u in await user_store.all_users(session)}
    shown_deals = await deal_views.deals_of_contact(db, contact_id)
    return CardPage(card, timeline, due, users, shown_deals)


async def timeline_page(
    db: Database, contact_id: int, *, after: Cursor | None, limit: int
) -> TimelinePage:
    """One more page of a card's timeline."""
    card = await contacts.card(db, contact_id, after=after, limit=limit)
    async with db() as session:
        return TimelinePage(card, await _timeline(session, card.timeline))


async def email_html(db: Database, interaction_id: int) -> str:
    """The stored HTML body of an e-mail (:class:`NotFound` when it had none)."""
    async with db() as session:
        body = await card_details.email_html(session, interaction_id)
    if body is None:
        raise NotFound("HTML body of e-mail", interaction_id)
    return body


async def thread(db: Database, thread_id: int) -> Thread:
    """Every message of an e-mail thread, oldest first, with the names of their cards."""
    async with db() as session:
        messages = await card_details.thread(session, thread_id)
        if not messages:
            raise NotFound("e-mail thread", thread_id)
        ids = {m.contact_id for m in messages if m.contact_id is not None}
        return Thread(messages, await contact_store.names_of(session, ids))


async def _timeline(session: AsyncSession, rows: Sequence[Interaction]) -> Timeline:
    return Timeline(
        rows=rows,
        sms=await card_details.sms_details(session, [r.id for r in rows if r.channel == "sms"]),
        emails=await card_details.email_details(
            session, [r.id for r in rows if r.channel == "email"]
        ),
        operators=await user_store.names_of(session, [r.operator_id for r in rows]),
        extensions=await _extension_names(session, rows),
    )


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


async def add_note(
    db: Database,
    *,
    contact_id: int,
    user_id: int,
    text: str,
    key: str,
    due: datetime | None,
) -> Interaction:
    """A note on the card (once per ``key``) and, with ``due``, a follow-up for its author:
    one transaction, so a note never stays without the follow-up asked with it."""
    async with db.begin() as session:
        note, created = await interaction_store.record(
            session,
            NewInteraction(
                channel=Medium.NOTE,
                direction=Direction.INTERNAL,
                status=Status.LOGGED,
                external_id=key,
                occurred_at=utcnow(),
                contact_id=contact_id,
                operator_id=user_id,
                summary=text,
            ),
        )
        if created and due is not None:
            await follow_ups.add(
                session,
                contact_id=contact_id,
                user_id=user_id,
                due_at=due,
                note=text[:500],
                created_by_id=user_id,
                interaction_id=note.id,
            )
    return note
