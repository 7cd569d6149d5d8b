"""What became of a campaign's messages: counts by outcome, and the per-recipient list.

Counted from the rows themselves (the recipient list, the outbox, the card
entries), never from counters kept on the side, so the figures after a
crash are the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.interactions import Direction, Status
from commhub.models import CampaignRecipient, Contact, Interaction, Outbox
from commhub.store import campaign_lists as lists

OUTBOX_STATES = (
    "queued",
    "sending",
    "sent",
    "failed",
    "bounced",
    "complained",
    "withheld",
    "cancelled",
    "uncertain",
    "dismissed",
)


async def counts(session: AsyncSession, campaign_id: int) -> dict[str, int]:
    """Recipients by list state and messages by outbox state and card status, in one dict."""
    found = dict.fromkeys((*OUTBOX_STATES, "pending", "delivered", "replied"), 0)
    pending = await session.scalar(
        select(func.count())
        .select_from(CampaignRecipient)
        .where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.state == lists.PENDING,
        )
    )
    found["pending"] = int(pending or 0)
    for state, count in await session.execute(
        select(Outbox.state, func.count())
        .where(Outbox.campaign_id == campaign_id)
        .group_by(Outbox.state)
    ):
        if state in found:
            found[state] = int(count)
    for status, count in await session.execute(
        select(Interaction.status, func.count())
        .join(Outbox, Outbox.interaction_id == Interaction.id)
        .where(
            Outbox.campaign_id == campaign_id,
            Interaction.status == Status.DELIVERED.value,
        )
        .group_by(Interaction.status)
    ):
        found[status] = int(count)
    replied = await session.scalar(
        select(func.count(func.distinct(Interaction.contact_id))).where(
            Interaction.campaign_id == campaign_id,
            Interaction.direction == Direction.INBOUND.value,
        )
    )
    found["replied"] = int(replied or 0)
    return found


async def recipients(
    session: AsyncSession,
    campaign_id: int,
    *,
    state: str | None,
    after: int,
    limit: int,
) -> Sequence[Any]:
    """Recipients in list order after ``seq`` ``after``, with their message's outcome."""
    query = (
        select(
            CampaignRecipient.seq,
            CampaignRecipient.contact_id,
            Contact.name,
            CampaignRecipient.channel,
            CampaignRecipient.address,
            func.coalesce(Outbox.state, CampaignRecipient.state).label("state"),
            func.coalesce(Outbox.last_error, CampaignRecipient.reason).label("reason"),
            Outbox.sent_at,
        )
        .join(Contact, Contact.id == CampaignRecipient.contact_id)
        .outerjoin(
            Outbox,
            and_(
                Outbox.campaign_id == CampaignRecipient.campaign_id,
                Outbox.contact_id == CampaignRecipient.contact_id,
                Outbox.channel == CampaignRecipient.channel,
            ),
        )
        .where(CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.seq > after)
        .order_by(CampaignRecipient.seq)
        .limit(limit)
    )
    if state is not None:
        query = query.where(func.coalesce(Outbox.state, CampaignRecipient.state) == state)
    return (await session.execute(query)).all()
