"""SMS queries: the text behind an SMS interaction and the gateways' ids of its parts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.models import Interaction, SmsMessage, SmsPart


async def message_of(session: AsyncSession, interaction_id: int) -> SmsMessage | None:
    return await session.scalar(
        select(SmsMessage).where(SmsMessage.interaction_id == interaction_id)
    )


async def add_parts(
    session: AsyncSession, message: SmsMessage, gateway_ids: Sequence[str], state: str
) -> None:
    """Remember the ids the gateway gave the message's parts; its reports name them."""
    session.add_all(
        SmsPart(sms_id=message.id, gateway=message.gateway, gateway_id=part, state=state)
        for part in dict.fromkeys(gateway_ids)
    )


async def part(
    session: AsyncSession, gateway: str, gateway_id: str
) -> tuple[SmsPart, SmsMessage, Interaction] | None:
    """The part a delivery report names, with its message and interaction (locked for update)."""
    row = (
        await session.execute(
            select(SmsPart, SmsMessage, Interaction)
            .join(SmsMessage, SmsMessage.id == SmsPart.sms_id)
            .join(Interaction, Interaction.id == SmsMessage.interaction_id)
            .where(SmsPart.gateway == gateway, SmsPart.gateway_id == gateway_id)
            .with_for_update(of=Interaction)
        )
    ).first()
    return None if row is None else (row[0], row[1], row[2])


async def parts_of(session: AsyncSession, sms_id: int) -> Sequence[SmsPart]:
    return (await session.scalars(select(SmsPart).where(SmsPart.sms_id == sms_id))).all()
