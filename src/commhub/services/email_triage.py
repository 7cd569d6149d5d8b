"""Mail as people read and look after it: one message with its thread, mail the hub could
not place (assign it, set it aside), mail it could not file, addresses it may not write to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.emails import EmailError, normalize_email
from commhub.models import Contact, Email, Interaction, MailFailure, Outbox, Suppression, utcnow
from commhub.services.database import Database
from commhub.services.errors import InvalidInput, NotFound
from commhub.store import contacts as contact_store
from commhub.store import emails as store


@dataclass(frozen=True, slots=True)
class EmailView:
    """One e-mail as the card shows it: the message, its interaction, its outbox row when
    we sent it, and every message of its thread, oldest first."""

    email: Email
    interaction: Interaction
    outbox: Outbox | None
    thread: Sequence[tuple[Email, Interaction]]


async def email(db: Database, interaction_id: int) -> EmailView:
    async with db() as session:
        message, interaction = await _load(session, interaction_id)
        outbox = await session.scalar(select(Outbox).where(Outbox.interaction_id == interaction_id))
        thread = await store.thread(session, message.thread_id) if message.thread_id else []
    return EmailView(message, interaction, outbox, thread)


async def stored_email(db: Database, interaction_id: int) -> Email:
    """The stored message, raw bytes included (for its attachments and the .eml download)."""
    async with db() as session:
        message, _ = await _load(session, interaction_id)
    return message


async def _load(session: AsyncSession, interaction_id: int) -> tuple[Email, Interaction]:
    interaction = await session.get(Interaction, interaction_id)
    message = await store.for_interaction(session, interaction_id)
    if interaction is None or message is None:
        raise NotFound("e-mail", interaction_id)
    return message, interaction


async def unmatched(
    db: Database, *, after_id: int | None, limit: int
) -> Sequence[tuple[Email, Interaction]]:
    """Mail from senders on no card (or on several), waiting for a person, newest first."""
    async with db() as session:
        return await store.unmatched(session, after_id=after_id, limit=limit)


async def assign(
    db: Database, interaction_id: int, contact_id: int, *, add_address: bool
) -> EmailView:
    """Put the message, and its thread's other unplaced messages, on ``contact_id``'s card."""
    async with db.begin() as session:
        message = await store.for_interaction(session, interaction_id)
        interaction = await session.get(Interaction, interaction_id)
        if message is None or interaction is None:
            raise NotFound("e-mail", interaction_id)
        contact = await session.get(Contact, contact_id)
        if contact is None or contact.merged_into_id is not None:
            raise InvalidInput("contact_id", f"contact {contact_id} does not exist or was merged")
        thread = select(Email.interaction_id).where(Email.thread_id == message.thread_id)
        await session.execute(
            update(Interaction)
            .where(
                (Interaction.id == interaction_id)
                | (Interaction.id.in_(thread) & Interaction.contact_id.is_(None))
            )
            .values(contact_id=contact_id)
        )
        await session.execute(
            update(Email)
            .where((Email.id == message.id) | (Email.thread_id == message.thread_id))
            .values(needs_assignment=False)
        )
        if add_address and interaction.from_address:
            try:
                address = normalize_email(interaction.from_address)
            except EmailError:
                address = ""
            if address:
                await contact_store.add_points(session, contact_id, [], [address])
    return await email(db, interaction_id)


async def dismiss(db: Database, interaction_id: int) -> EmailView:
    """Set an unmatched message aside: it leaves the unmatched list, on no card."""
    async with db.begin() as session:
        message = await store.for_interaction(session, interaction_id)
        if message is None:
            raise NotFound("e-mail", interaction_id)
        message.needs_assignment = False
    return await email(db, interaction_id)


async def failures(db: Database, *, after_id: int | None, limit: int) -> Sequence[MailFailure]:
    """Messages not yet dealt with that could not be filed, newest first."""
    async with db() as session:
        return await store.failures(session, after_id=after_id, limit=limit)


async def failure(db: Database, failure_id: int) -> MailFailure:
    async with db() as session:
        return await _failure(session, failure_id)


async def _failure(session: AsyncSession, failure_id: int) -> MailFailure:
    row = await session.get(MailFailure, failure_id)
    if row is None:
        raise NotFound("mail failure", failure_id)
    return row


async def resolve_failure(db: Database, failure_id: int) -> MailFailure:
    async with db.begin() as session:
        row = await _failure(session, failure_id)
        if row.resolved_at is None:
            row.resolved_at = utcnow()
    return row


async def suppressions(
    db: Database,
    *,
    channel: str | None,
    address: str | None,
    after_id: int | None,
    limit: int,
) -> Sequence[Suppression]:
    query = select(Suppression)
    if channel is not None:
        query = query.where(Suppression.channel == channel)
    if address is not None:
        query = query.where(Suppression.address == address.strip().lower())
    if after_id is not None:
        query = query.where(Suppression.id < after_id)
    async with db() as session:
        return (await session.scalars(query.order_by(Suppression.id.desc()).limit(limit))).all()


async def lift(db: Database, suppression_id: int) -> None:
    async with db.begin() as session:
        result = await session.execute(delete(Suppression).where(Suppression.id == suppression_id))
        if not getattr(result, "rowcount", 0):
            raise NotFound("suppression", suppression_id)
