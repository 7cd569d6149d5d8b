"""A campaign's frozen recipient list: written in chunks from the segment, read in chunks to fill.

The list is frozen in chunks of contacts in id order, each chunk committed
with the campaign's counters, so a stop midway resumes after the last
contact written (``frozen_through``) instead of starting over or holding
one transaction (and SQLite's only write lock) for a million rows.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, false, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.campaigns import Person
from commhub.models import (
    Campaign,
    CampaignRecipient,
    Consent,
    Contact,
    ContactPoint,
    Segment,
    Suppression,
)
from commhub.store import segments

PENDING = "pending"
QUEUED = "queued"
EXCLUDED = "excluded"


async def members_of(session: AsyncSession, segment_id: int | None) -> Select[Any]:
    """The contact ids the campaign's segment holds now (none if it is gone)."""
    segment = await session.get(Segment, segment_id) if segment_id is not None else None
    if segment is None:
        return select(Contact.id).where(false())
    return segments.of_segment(segment)


async def frozen_through(session: AsyncSession, campaign_id: int) -> int:
    """The last contact id already on the list (0 for none)."""
    last = await session.scalar(
        select(func.max(CampaignRecipient.contact_id)).where(
            CampaignRecipient.campaign_id == campaign_id
        )
    )
    return int(last or 0)


async def next_members(
    session: AsyncSession, members: Select[Any], *, after: int, limit: int
) -> list[int]:
    """The next ``limit`` contact ids of ``members`` above ``after``, in id order."""
    chosen = members.subquery()
    column = chosen.c[0]
    rows = await session.scalars(select(column).where(column > after).order_by(column).limit(limit))
    return list(rows)


async def people(session: AsyncSession, ids: Sequence[int], purpose: str) -> list[Person]:
    """What a campaign needs to know of each contact: addresses, consent, suppressions."""
    emails: dict[int, list[str]] = defaultdict(list)
    phones: dict[int, list[str]] = defaultdict(list)
    points = await session.execute(
        select(ContactPoint.contact_id, ContactPoint.kind, ContactPoint.value)
        .where(ContactPoint.contact_id.in_(ids))
        .order_by(ContactPoint.contact_id, ContactPoint.id)
    )
    for contact_id, kind, value in points:
        (emails if kind == "email" else phones)[contact_id].append(value)
    consent: dict[int, dict[str, bool]] = defaultdict(dict)
    answers = await session.execute(
        select(Consent.contact_id, Consent.channel, Consent.granted).where(
            Consent.contact_id.in_(ids), Consent.purpose == purpose
        )
    )
    for contact_id, channel, granted in answers:
        consent[contact_id][channel] = bool(granted)
    addresses = [a for i in ids for a in (*emails[i][:1], *phones[i][:1])]
    listed: set[tuple[str, str]] = set()
    if addresses:
        rows = await session.execute(
            select(Suppression.channel, Suppression.address).where(
                Suppression.address.in_(addresses)
            )
        )
        listed = {(channel, address) for channel, address in rows}

    def on_a_list(i: int) -> frozenset[tuple[str, str]]:
        firsts = [("email", a) for a in emails[i][:1]] + [("sms", a) for a in phones[i][:1]]
        return frozenset(pair for pair in firsts if pair in listed)

    return [
        Person(
            contact_id=i,
            emails=tuple(emails[i]),
            phones=tuple(phones[i]),
            consent=consent[i],
            suppressed=on_a_list(i),
        )
        for i in ids
    ]


async def addresses_taken(
    session: AsyncSession, campaign_id: int, addresses: Sequence[str]
) -> set[str]:
    """Which of ``addresses`` another recipient of the campaign already gets."""
    if not addresses:
        return set()
    rows = await session.scalars(
        select(CampaignRecipient.address).where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.address.in_(list(set(addresses))),
            CampaignRecipient.state != EXCLUDED,
        )
    )
    return set(rows)


async def add(
    session: AsyncSession, campaign_id: int, rows: Sequence[dict[str, Any]], *, excluded: int
) -> None:
    """Write a chunk of the list and count it on the campaign. No commit."""
    if not rows:
        return
    base = await session.scalar(select(Campaign.recipients).where(Campaign.id == campaign_id))
    await session.execute(
        insert(CampaignRecipient),
        [
            {**row, "campaign_id": campaign_id, "seq": int(base or 0) + n, "token": token()}
            for n, row in enumerate(rows)
        ],
    )
    await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(recipients=Campaign.recipients + len(rows), excluded=Campaign.excluded + excluded)
    )


def token() -> str:
    """An unsubscribe link's secret: 128 bits, URL-safe."""
    return secrets.token_urlsafe(16)
