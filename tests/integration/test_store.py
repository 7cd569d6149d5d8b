"""The store on each backend: migrations equal the models, interactions recorded once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from commhub.domain.interactions import Direction, Medium, NewInteraction, Status
from commhub.models import Base, Contact, Interaction
from commhub.store import interactions
from commhub.store.engine import SessionFactory


async def test_migrated_schema_equals_the_models(engine: AsyncEngine) -> None:
    def diff(connection: object) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []


def _call(external_id: str, minute: int = 0) -> NewInteraction:
    return NewInteraction(
        channel=Medium.CALL,
        direction=Direction.INBOUND,
        status=Status.MISSED,
        external_id=external_id,
        occurred_at=datetime(2026, 11, 1, 10, minute, tzinfo=UTC),
        from_address="89161234567",
    )


async def test_same_external_event_twice_is_one_row(sessions: SessionFactory) -> None:
    async with sessions() as session:
        first, created = await interactions.record(session, _call("1700000000.1"))
        await session.commit()
    async with sessions() as session:
        again, created_again = await interactions.record(session, _call("1700000000.1"))
        await session.commit()
        count = await session.scalar(select(func.count()).select_from(Interaction))
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert count == 1


async def test_racing_writers_of_one_event_still_write_one_row(sessions: SessionFactory) -> None:
    async def write() -> bool:
        async with sessions() as session:
            _, created = await interactions.record(session, _call("race"))
            await session.commit()
            return created

    results = await asyncio.gather(*(write() for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]


async def test_times_come_back_in_utc_and_order_across_zones(sessions: SessionFactory) -> None:
    moscow = timezone(timedelta(hours=3))
    async with sessions() as session:
        contact = Contact(name="Zones", name_key="zones")
        session.add(contact)
        await session.flush()
        for external_id, moment in (
            ("utc-10:30", datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),
            ("msk-13:00", datetime(2026, 11, 1, 13, 0, tzinfo=moscow)),  # 10:00 UTC
            ("msk-13:45", datetime(2026, 11, 1, 13, 45, tzinfo=moscow)),  # 10:45 UTC
        ):
            new = replace(_call(external_id), occurred_at=moment, contact_id=contact.id)
            await interactions.record(session, new)
        await session.commit()
        page = await interactions.timeline(session, contact.id, after=None, limit=10)
    assert [row.external_id for row in page] == ["msk-13:45", "utc-10:30", "msk-13:00"]
    assert page[-1].occurred_at == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert page[-1].occurred_at.tzinfo is not None
