"""The manager's start page figures: per person what was done and what is owed, and what each
source of deals brought in. Grouped queries, each bounded by the period or by open rows."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from commhub.domain.deals import StageKind
from commhub.domain.interactions import Direction, Medium
from commhub.models import Contact, Deal, FollowUp, Interaction, Stage


async def follow_ups_done(
    session: AsyncSession, *, since: datetime, until: datetime
) -> dict[int, int]:
    rows = await session.execute(
        select(FollowUp.done_by_id, func.count())
        .where(
            FollowUp.done_at >= since, FollowUp.done_at < until, FollowUp.done_by_id.is_not(None)
        )
        .group_by(FollowUp.done_by_id)
    )
    return {int(user): int(n) for user, n in rows.all() if user is not None}


async def won(
    session: AsyncSession, *, since: datetime, until: datetime
) -> list[tuple[int | None, str, str, int, Decimal]]:
    """Deals that stand won and were closed in the period: (owner, source, currency, how many,
    sum)."""
    won_ids = select(Stage.id).where(Stage.kind == StageKind.WON.value)
    rows = await session.execute(
        select(Deal.owner_id, Deal.source, Deal.currency, func.count(), func.sum(Deal.amount))
        .where(
            Deal.closed_at >= since,
            Deal.closed_at < until,
            Deal.stage_id.in_(won_ids),
        )
        .group_by(Deal.owner_id, Deal.source, Deal.currency)
    )
    return [
        (owner, source, currency, int(n), Decimal(total or 0))
        for owner, source, currency, n, total in rows.all()
    ]


async def opened_by_source(
    session: AsyncSession, *, since: datetime, until: datetime
) -> dict[str, int]:
    rows = await session.execute(
        select(Deal.source, func.count())
        .where(Deal.created_at >= since, Deal.created_at < until)
        .group_by(Deal.source)
    )
    return {source: int(n) for source, n in rows.all()}


async def overdue_next_steps(session: AsyncSession, *, today: date) -> dict[int | None, int]:
    """Open deals whose next step was due before the viewer's today, per owner."""
    rows = await session.execute(
        select(Deal.owner_id, func.count())
        .where(Deal.closed_at.is_(None), Deal.next_step_due_on < today)
        .group_by(Deal.owner_id)
    )
    return {owner: int(n) for owner, n in rows.all()}


def _unanswered(since: datetime) -> ColumnElement[bool]:
    """An inbound e-mail since ``since`` on an owned card, with no e-mail sent to that
    contact after it."""
    reply = aliased(Interaction)
    answered = exists().where(
        reply.contact_id == Interaction.contact_id,
        reply.channel == Medium.EMAIL.value,
        reply.direction == Direction.OUTBOUND.value,
        reply.occurred_at > Interaction.occurred_at,
    )
    return and_(
        Interaction.channel == Medium.EMAIL.value,
        Interaction.direction == Direction.INBOUND.value,
        Interaction.occurred_at >= since,
        Contact.owner_id.is_not(None),
        ~answered,
    )


async def emails_waiting(session: AsyncSession, *, since: datetime) -> dict[int, int]:
    """Per contact owner: contacts who wrote since ``since`` and were not written back to
    after their last message (an outbound e-mail to the contact later than it)."""
    rows = await session.execute(
        select(Contact.owner_id, func.count(func.distinct(Interaction.contact_id)))
        .join(Contact, Contact.id == Interaction.contact_id)
        .where(_unanswered(since))
        .group_by(Contact.owner_id)
    )
    return {int(owner): int(n) for owner, n in rows.all() if owner is not None}


async def waiting_for(
    session: AsyncSession, owner_id: int, *, since: datetime, limit: int = 200
) -> list[tuple[Interaction, str]]:
    """The unanswered e-mails on ``owner_id``'s cards, the oldest first, with the names."""
    rows = await session.execute(
        select(Interaction, Contact.name)
        .join(Contact, Contact.id == Interaction.contact_id)
        .where(_unanswered(since), Contact.owner_id == owner_id)
        .order_by(Interaction.occurred_at, Interaction.id)
        .limit(limit)
    )
    return [(row, name) for row, name in rows.all()]
