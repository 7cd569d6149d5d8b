"""The suppression lists: addresses no message may go to on a channel, and why.

One list per channel (a hard-bounced e-mail address, a number that texted
STOP); every sender asks here before it queues a message.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.interactions import Medium
from commhub.models import Suppression, utcnow
from commhub.store.dialect import upsert_insert


async def suppress(
    session: AsyncSession, channel: Medium, address: str, *, reason: str, source: str
) -> None:
    """Put ``address`` on the channel's suppression list; the first reason stays."""
    await session.execute(
        upsert_insert(session, Suppression)
        .values(
            channel=channel.value,
            address=address,
            reason=reason,
            source=source,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["channel", "address"])
    )


async def suppressed(
    session: AsyncSession, channel: Medium, addresses: Iterable[str]
) -> dict[str, Suppression]:
    """The addresses among ``addresses`` that are on the list, with their entry."""
    wanted = list(dict.fromkeys(addresses))
    if not wanted:
        return {}
    rows = await session.scalars(
        select(Suppression).where(
            Suppression.channel == channel.value, Suppression.address.in_(wanted)
        )
    )
    return {row.address: row for row in rows}


async def lift_address(session: AsyncSession, channel: Medium, address: str) -> bool:
    """Take ``address`` off the channel's list (the person opted back in); whether it was on."""
    result = await session.execute(
        delete(Suppression).where(
            Suppression.channel == channel.value, Suppression.address == address
        )
    )
    return bool(getattr(result, "rowcount", 0))
