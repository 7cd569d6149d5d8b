"""Fill a migrated database with contacts and their phone numbers, fast.

SQLite takes SQLAlchemy Core ``executemany`` in big batches; PostgreSQL takes
asyncpg's binary ``COPY``. Ids are given explicitly (and PostgreSQL's
sequences moved past them) so that the data is the same on both backends.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from phonebook import draw_number
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commhub.models import Contact, ContactPoint

BATCH: Final = 50_000
SECOND_NUMBER_SHARE: Final = 0.15
SHARED_NUMBER_EVERY: Final = 1_000
"""One contact in this many gets a number another contact already has (family, office line)."""
EPOCH: Final = datetime(2023, 1, 1, tzinfo=UTC)


@dataclass
class Batch:
    contacts: list[dict[str, Any]] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)


def batches(contacts: int, seed: int) -> Iterator[Batch]:
    """Contacts ``1..contacts`` with one or two numbers each, a few numbers shared."""
    rng = random.Random(seed)
    seen: set[str] = set()
    recent: list[tuple[str, str]] = []
    point_id = 0
    batch = Batch()
    for contact_id in range(1, contacts + 1):
        created = EPOCH + timedelta(seconds=rng.randrange(90_000_000))
        name = f"Customer {contact_id}"
        batch.contacts.append(
            {
                "id": contact_id,
                "name": name,
                "name_key": name.lower(),
                "extra": {},
                "created_at": created,
                "updated_at": created,
            }
        )
        numbers: list[tuple[str, str]] = []
        if contact_id % SHARED_NUMBER_EVERY == 0 and recent:
            numbers.append(rng.choice(recent))
        count = 2 if rng.random() < SECOND_NUMBER_SHARE else 1
        while len(numbers) < count:
            phone = draw_number(rng).phone
            if phone.e164 not in seen:
                seen.add(phone.e164)
                numbers.append((phone.e164, phone.match_key))
        recent = (recent + numbers)[-1000:]
        for label, (e164, match_key) in zip(("mobile", "work"), numbers, strict=False):
            point_id += 1
            batch.points.append(
                {
                    "id": point_id,
                    "contact_id": contact_id,
                    "kind": "phone",
                    "value": e164,
                    "match_key": match_key,
                    "label": label,
                    "created_at": created,
                }
            )
        if len(batch.contacts) >= BATCH:
            yield batch
            batch = Batch()
    if batch.contacts:
        yield batch


async def fill(engine: AsyncEngine, contacts: int, *, seed: int = 1) -> str:
    """Write the generated contacts; returns a one-line summary with the load time."""
    start = time.perf_counter()
    points = 0
    async with engine.connect() as connection:
        for batch in batches(contacts, seed):
            if engine.dialect.name == "sqlite":
                await connection.execute(insert(Contact), batch.contacts)
                await connection.execute(insert(ContactPoint), batch.points)
            else:
                await _copy(connection, Contact.__tablename__, batch.contacts)
                await _copy(connection, ContactPoint.__tablename__, batch.points)
            await connection.commit()
            points += len(batch.points)
            done = batch.contacts[-1]["id"]
            elapsed = time.perf_counter() - start
            print(f"  {done:>9} contacts, {points:>9} numbers, {elapsed:6.1f} s")
        if engine.dialect.name != "sqlite":
            await _after_copy(connection)
        else:
            await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        await connection.commit()
    seconds = time.perf_counter() - start
    return f"{contacts} contacts, {points} numbers loaded in {seconds:.1f} s"


async def _copy(connection: AsyncConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """asyncpg COPY of ``rows``: naive UTC times and JSON as text, as the columns store them."""
    columns = list(rows[0])
    records = [
        tuple(
            "{}"
            if isinstance(value, dict)
            else value.replace(tzinfo=None)
            if isinstance(value, datetime)
            else value
            for value in row.values()
        )
        for row in rows
    ]
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table, records=records, columns=columns)


async def _after_copy(connection: AsyncConnection) -> None:
    """Move the id sequences past the copied ids and give the planner fresh statistics."""
    for table in (Contact.__tablename__, ContactPoint.__tablename__):
        await connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        )
        await connection.execute(text(f"ANALYZE {table}"))
