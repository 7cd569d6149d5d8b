"""Contact-point lookups: the indexed queries behind identify, dedupe and search."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.phones import PhoneCandidate
from commhub.store.schema import ContactPoint

PHONE = "phone"
EMAIL = "email"


async def phone_candidates(session: AsyncSession, match_key: str) -> list[PhoneCandidate]:
    """Every stored phone sharing ``match_key`` (served by ``ix_contact_points_kind_match_key``)."""
    rows = await session.execute(
        select(ContactPoint.contact_id, ContactPoint.value)
        .where(ContactPoint.kind == PHONE, ContactPoint.match_key == match_key)
        .order_by(ContactPoint.contact_id)
    )
    return [PhoneCandidate(contact_id=cid, e164=value) for cid, value in rows]


async def email_owners(session: AsyncSession, address: str) -> list[int]:
    """Contacts holding the normalised ``address``."""
    rows = await session.scalars(
        select(ContactPoint.contact_id)
        .where(ContactPoint.kind == EMAIL, ContactPoint.value == address)
        .order_by(ContactPoint.contact_id)
    )
    return list(dict.fromkeys(rows))
