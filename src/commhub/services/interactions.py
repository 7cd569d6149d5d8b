"""Recording interactions: the one place a call, SMS, e-mail or note lands on a card."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.interactions import NewInteraction
from commhub.services.identify import Verdict, identify
from commhub.store import interactions as store
from commhub.store.schema import Interaction


async def record_interaction(
    session: AsyncSession, new: NewInteraction, *, region: str
) -> tuple[Interaction, bool]:
    """Log ``new`` once, on the card of the contact its counterpart address belongs to.

    If the event names no contact, the counterpart address is identified; an
    ambiguous or unknown address leaves the interaction unmatched (visible in
    the log) rather than guessed. Replays return the first row unchanged.
    Commits; returns the row and whether it is new.
    """
    if new.contact_id is None and new.counterpart_address:
        found = await identify(session, new.counterpart_address, region=region)
        if found.verdict is Verdict.MATCH:
            new = replace(new, contact_id=found.contact_ids[0])
    row, created = await store.record(session, new)
    await session.commit()
    return row, created
