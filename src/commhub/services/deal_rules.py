"""The rule that opens a deal by itself: an inbound call or e-mail from a contact with no
open deal, on a channel the default pipeline's settings name.

It runs inside the filing transaction of the call or message, keyed by the
interaction (``rule:<channel>:<id>``), so a replay or a restart opens nothing
twice, and in a savepoint, so a deal it cannot open never costs the call or
the message its place on the card.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.contacts import FieldError
from commhub.domain.deals import DealSource
from commhub.domain.interactions import Direction
from commhub.domain.money import default_currency
from commhub.models import Contact, Deal, Interaction
from commhub.services.deals import SYSTEM, DealDraft, open_deal
from commhub.services.errors import ServiceError
from commhub.store import deals as store
from commhub.store import pipelines as pipeline_store

log = logging.getLogger(__name__)


async def open_for_inbound(
    session: AsyncSession, interaction: Interaction, *, region: str
) -> Deal | None:
    """Open a deal for ``interaction``'s contact if the rule says so; ``None`` otherwise.

    A call counts once someone answered it or it ended (a ringing call may
    still turn out to be a wrong number picked up by nobody, and the owner is
    whoever answered); the deal goes to the answering operator, else to the
    contact's owner.
    """
    if interaction.direction != Direction.INBOUND.value or interaction.contact_id is None:
        return None
    if (
        interaction.channel == "call"
        and interaction.ended_at is None
        and (interaction.answered_at is None)
    ):
        return None
    pipeline = await pipeline_store.default_pipeline(session)
    if pipeline is None or not (pipeline.auto_create or {}).get(interaction.channel):
        return None
    key = f"rule:{interaction.channel}:{interaction.id}"
    if await store.by_origin(session, key) is not None:
        return None
    if await store.has_open_deal(session, interaction.contact_id):
        return None
    contact = await session.get(Contact, interaction.contact_id)
    if contact is None:
        return None
    draft = DealDraft(
        title=contact.name or interaction.from_address or f"#{interaction.id}",
        currency=default_currency(region),
        contact_id=contact.id,
        owner_id=interaction.operator_id or contact.owner_id,
        source=DealSource(interaction.channel),
        pipeline_id=pipeline.id,
        origin_key=key,
    )
    try:
        async with session.begin_nested():
            return await open_deal(session, draft, SYSTEM)
    except (ServiceError, FieldError, SQLAlchemyError) as exc:
        log.warning("no deal opened for %s %d: %s", interaction.channel, interaction.id, exc)
        return None
