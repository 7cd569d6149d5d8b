"""The people a campaign benchmark sends to: contacts with an address and consent, on one list.

Written with bulk INSERTs in chunks (one transaction each), as an import would
leave them, so the benchmarks time the campaign and not the loading.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from commhub.models import Consent, Contact, ContactPoint, Segment, SegmentMember, utcnow

CHUNK = 20_000


async def load_people(
    engine: AsyncEngine, count: int, *, channel: str, address: Callable[[int], str]
) -> int:
    """``count`` contacts, the n-th with ``address(n)`` and marketing consent on ``channel``
    (``email`` or ``sms``), all on one static list; the list's id."""
    kind = "email" if channel == "email" else "phone"
    now = utcnow()
    async with engine.begin() as connection:
        segment = (
            await connection.execute(
                insert(Segment).values(name="Everyone", kind="static").returning(Segment.id)
            )
        ).scalar_one()
    for start in range(0, count, CHUNK):
        numbers = range(start, min(count, start + CHUNK))
        async with engine.begin() as connection:
            ids = (
                (
                    await connection.execute(
                        insert(Contact).returning(Contact.id),
                        [{"name": f"Клиент {n}", "name_key": f"клиент {n}"} for n in numbers],
                    )
                )
                .scalars()
                .all()
            )
            await connection.execute(
                insert(ContactPoint),
                [
                    {
                        "contact_id": i,
                        "kind": kind,
                        "value": address(n),
                        "match_key": address(n) if kind == "email" else address(n)[-10:],
                    }
                    for i, n in zip(ids, numbers, strict=True)
                ],
            )
            await connection.execute(
                insert(Consent),
                [
                    {
                        "contact_id": i,
                        "channel": channel,
                        "purpose": "marketing",
                        "granted": True,
                        "source": "bench",
                        "recorded_at": now,
                    }
                    for i in ids
                ],
            )
            await connection.execute(
                insert(SegmentMember), [{"segment_id": segment, "contact_id": i} for i in ids]
            )
    return int(segment)
