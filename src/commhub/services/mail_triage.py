"""What people do with mail the hub could not place: assign it, set it aside, clear failures."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.emails import EmailError, normalize_email
from commhub.models import Contact, Email, Interaction, MailFailure, Suppression, utcnow
from commhub.services.errors import InvalidInput, NotFound
from commhub.store import contacts as contact_store
from commhub.store import emails as store


async def assign(
    session: AsyncSession, interaction_id: int, contact_id: int, *, add_address: bool
) -> None:
    """Put the message, and its thread's other unplaced messages, on ``contact_id``'s card."""
    email = await store.for_interaction(session, interaction_id)
    interaction = await session.get(Interaction, interaction_id)
    if email is None or interaction is None:
        raise NotFound("e-mail", interaction_id)
    contact = await session.get(Contact, contact_id)
    if contact is None or contact.merged_into_id is not None:
        raise InvalidInput("contact_id", f"contact {contact_id} does not exist or was merged")
    thread = select(Email.interaction_id).where(Email.thread_id == email.thread_id)
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
        .where((Email.id == email.id) | (Email.thread_id == email.thread_id))
        .values(needs_assignment=False)
    )
    if add_address and interaction.from_address:
        try:
            address = normalize_email(interaction.from_address)
        except EmailError:
            address = ""
        if address:
            await contact_store.add_points(session, contact_id, [], [address])
    await session.commit()


async def dismiss(session: AsyncSession, interaction_id: int) -> None:
    email = await store.for_interaction(session, interaction_id)
    if email is None:
        raise NotFound("e-mail", interaction_id)
    email.needs_assignment = False
    await session.commit()


async def failure(session: AsyncSession, failure_id: int) -> MailFailure:
    row = await session.get(MailFailure, failure_id)
    if row is None:
        raise NotFound("mail failure", failure_id)
    return row


async def resolve_failure(session: AsyncSession, failure_id: int) -> MailFailure:
    row = await failure(session, failure_id)
    if row.resolved_at is None:
        row.resolved_at = utcnow()
        await session.commit()
    return row


async def suppressions(
    session: AsyncSession,
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
    return (await session.scalars(query.order_by(Suppression.id.desc()).limit(limit))).all()


async def lift(session: AsyncSession, suppression_id: int) -> None:
    result = await session.execute(delete(Suppression).where(Suppression.id == suppression_id))
    if not getattr(result, "rowcount", 0):
        raise NotFound("suppression", suppression_id)
    await session.commit()
