"""Fill a migrated database with a million contacts' numbers and ten million interactions.

Built from the other benchmarks' generators, so the data is theirs: first
bench/timeline's in-database SQL writes the contacts and the interactions
(secondary indexes dropped and rebuilt), spread over every contact instead of
a fiftieth of the rows; then bench/identify's generator gives those contacts
their numbers (one or two each, in four countries, a few shared). Last comes
the operator who takes the calls: a user with extension 201.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commhub.domain.roles import Role
from commhub.models import ContactPoint
from commhub.services import users
from commhub.store.engine import open_engine, session_factory
from databases import BenchDatabase
from identify.load import batches
from timeline.load import Shape, fill_postgres, fill_sqlite

OPERATOR: Final = "bench-operator"
EXTENSION: Final = "201"
"""The extension the recorded calls ring (DID 74951234567 → operator 201)."""
OPERATOR_PASSWORD: Final = "bench-operator-password"


@dataclass(frozen=True, slots=True)
class CardShape(Shape):
    """bench/timeline's shape, with the number of contacts given rather than rows / 50."""

    people: int = 1_000_000

    @property
    def contacts(self) -> int:
        return self.people


async def fill(database: BenchDatabase, shape: CardShape) -> str:
    """Load ``shape`` into the migrated ``database``; a one-line summary with the times."""
    start = time.perf_counter()
    engine = open_engine(database.url)
    try:
        if database.is_sqlite:
            await asyncio.to_thread(fill_sqlite, database.sqlite_path, shape)
        else:
            await fill_postgres(engine, shape)
        cards = time.perf_counter() - start
        numbers = await fill_numbers(engine, shape.contacts)
        phones = time.perf_counter() - start - cards
        await add_operator(engine)
    finally:
        await engine.dispose()
    return (
        f"{shape.contacts} contacts, {numbers} numbers, {shape.rows} interactions loaded in "
        f"{time.perf_counter() - start:.1f} s (contacts and interactions {cards:.1f} s, "
        f"numbers {phones:.1f} s)"
    )


async def fill_numbers(engine: AsyncEngine, contacts: int, *, seed: int = 1) -> int:
    """bench/identify's numbers for contacts ``1..contacts`` (which exist already)."""
    start = time.perf_counter()
    points = 0
    async with engine.connect() as connection:
        for batch in batches(contacts, seed):
            if engine.dialect.name == "sqlite":
                await connection.execute(insert(ContactPoint), batch.points)
            else:
                await _copy_points(connection, batch.points)
            await connection.commit()
            points += len(batch.points)
            done = batch.contacts[-1]["id"]
            elapsed = time.perf_counter() - start
            print(f"  {done:>9} contacts' numbers, {points:>9} numbers, {elapsed:6.1f} s")
        if engine.dialect.name == "sqlite":
            await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        else:
            await connection.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('contact_points', 'id'), "
                    "(SELECT max(id) FROM contact_points))"
                )
            )
            await connection.execute(text("ANALYZE contact_points"))
        await connection.commit()
    return points


async def _copy_points(connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """asyncpg COPY of contact points; times naive UTC, as the column stores them."""
    columns = list(rows[0])
    records = [
        tuple(v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row.values())
        for row in rows
    ]
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(ContactPoint.__tablename__, records=records, columns=columns)


async def add_operator(engine: AsyncEngine) -> None:
    """The user whose phone rings: an operator at extension 201."""
    async with session_factory(engine)() as session:
        await users.create_user(
            session,
            username=OPERATOR,
            password=OPERATOR_PASSWORD,
            role=Role.OPERATOR,
            extension=EXTENSION,
        )
        await session.commit()
