"""Which campaign a received message answers: by the mail it replies to, or the SMS before it.

An e-mail names what it answers (In-Reply-To, References); an SMS names
nothing, so a text from a number that got a campaign's SMS lately is taken
as that campaign's reply (the latest such campaign).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.interactions import Direction, Medium
from commhub.models import Interaction, Outbox


async def campaign_of(session: AsyncSession, interaction_ids: Sequence[int]) -> int | None:
    """The campaign of the first of these messages (nearest first) that is a campaign's."""
    if not interaction_ids:
        return None
    rows = await session.execute(
        select(Interaction.id, Interaction.campaign_id).where(
            Interaction.id.in_(list(interaction_ids)), Interaction.campaign_id.is_not(None)
        )
    )
    found = {interaction_id: campaign_id for interaction_id, campaign_id in rows}
    for interaction_id in interaction_ids:
        campaign_id = found.get(interaction_id)
        if campaign_id is not None:
            return campaign_id
    return None


async def latest_sms_campaign(
    session: AsyncSession,
    contact_ids: Sequence[int],
    number: str,
    *,
    since: datetime,
    until: datetime,
) -> int | None:
    """The campaign whose SMS to ``number`` went out last between ``since`` and ``until``.

    Looked for on the cards of the contacts the number belongs to (the card
    index, not a scan of every SMS): a campaign's message is always on its
    recipient's card.
    """
    if not contact_ids or not number:
        return None
    return await session.scalar(
        select(Interaction.campaign_id)
        .join(Outbox, Outbox.interaction_id == Interaction.id)
        .where(
            Interaction.contact_id.in_(list(contact_ids)),
            Interaction.channel == Medium.SMS.value,
            Interaction.direction == Direction.OUTBOUND.value,
            Interaction.campaign_id.is_not(None),
            Interaction.to_address == number,
            Outbox.sent_at >= since,
            Outbox.sent_at <= until,
        )
        .order_by(Outbox.sent_at.desc(), Outbox.id.desc())
        .limit(1)
    )
