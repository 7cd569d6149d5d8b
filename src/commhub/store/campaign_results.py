"""What became of a campaign's messages: counts by outcome, and the per-recipient list.

Counted from the rows themselves (the recipient list, the outbox, the card
entries), never from counters kept on the side, so the figures after a
crash are the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
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


async def exclusions(session: AsyncSession, campaign_id: int) -> dict[str, int]:
    """Recipients left out, by reason (``render_failed: …`` counts as ``render_failed``)."""
    found: dict[str, int] = {}
    for reason, count in await session.execute(
        select(CampaignRecipient.reason, func.count())
        .where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.state == lists.EXCLUDED,
        )
        .group_by(CampaignRecipient.reason)
    ):
        key = str(reason or "").partition(":")[0].strip() or "unknown"
        found[key] = found.get(key, 0) + int(count)
    return found


async def retrying(session: AsyncSession, campaign_id: int) -> int:
    """Messages waiting for another try after a temporary refusal (a soft bounce, a 4xx)."""
    count = await session.scalar(
        select(func.count())
        .select_from(Outbox)
        .where(
            Outbox.campaign_id == campaign_id,
            Outbox.state == "queued",
            Outbox.attempts > 0,
        )
    )
    return int(count or 0)


async def sent_per_minute(
    session: AsyncSession, campaign_id: int, *, minutes: int
) -> list[tuple[datetime, int]]:
    """Messages handed over in each of the last ``minutes`` minutes it sent in, oldest first.

    Counted by the database, a minute per group: PostgreSQL truncates with
    ``date_trunc``, SQLite (which keeps times as ISO text) with ``strftime``.
    """
    latest = await session.scalar(
        select(func.max(Outbox.sent_at)).where(
            Outbox.campaign_id == campaign_id, Outbox.sent_at.is_not(None)
        )
    )
    if latest is None:
        return []
    since = latest.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    if session.get_bind().dialect.name == "postgresql":
        minute: Any = func.date_trunc("minute", Outbox.sent_at)
    else:
        minute = func.strftime("%Y-%m-%d %H:%M", Outbox.sent_at)
    counted: dict[datetime, int] = {}
    for started, count in await session.execute(
        select(minute, func.count())
        .where(Outbox.campaign_id == campaign_id, Outbox.sent_at >= since)
        .group_by(minute)
    ):
        if isinstance(started, str):
            started = datetime.fromisoformat(started)
        counted[started.replace(tzinfo=UTC)] = int(count)
    first = since
    return [
        (first + timedelta(minutes=n), counted.get(first + timedelta(minutes=n), 0))
        for n in range(minutes)
    ]


async def sent_by_campaign(session: AsyncSession, campaign_ids: Sequence[int]) -> dict[int, int]:
    """Messages handed over (sent, and what came of them since) per campaign."""
    if not campaign_ids:
        return {}
    handed_over = ("sent", "bounced", "complained", "uncertain")
    rows = await session.execute(
        select(Outbox.campaign_id, func.count())
        .where(Outbox.campaign_id.in_(campaign_ids), Outbox.state.in_(handed_over))
        .group_by(Outbox.campaign_id)
    )
    return {int(key): int(count) for key, count in rows if key is not None}
