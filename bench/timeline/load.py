"""Fill a migrated database with millions of interactions, generated inside the database.

Rows come from ``n`` alone through integer hashes (no ``random()``), so both
backends hold the same data: a few heavy contacts (one row in ten, spread over
them) and many ordinary ones, at times spread over three years. The
interactions' secondary indexes are dropped for the load and recreated from
their own saved definitions; the load then checks that the schema is exactly
the migrated one again.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

CHUNK: Final = 1_000_000
OPERATORS: Final = 20
EPOCH_UNIX: Final = 1_672_531_200  # 2023-01-01T00:00:00Z
SPAN_S: Final = 3 * 365 * 86_400


@dataclass(frozen=True, slots=True)
class Shape:
    """How many rows, over how many contacts, and how many of those are heavy."""

    rows: int
    heavy: int = 5

    @property
    def contacts(self) -> int:
        return max(self.heavy + 100, self.rows // 50)

    @property
    def heavy_rows(self) -> int:
        """Rows each heavy contact gets (one row in ten, shared between them)."""
        return self.rows // 10 // self.heavy


# The same hashes on both backends: h(n) = (n * odd) mod 2^32.
_TIME = f"((n * 2654435761) % 4294967296) % {SPAN_S}"
_MICRO = "((n * 40503) % 1000000)"
_CONTACT = "CASE WHEN n % 10 = 0 THEN 1 + (n / 10) % :heavy ELSE :heavy + 1 + ((n * 2246822519) % 4294967296) % (:contacts - :heavy) END"  # noqa: E501

_COLUMNS = (
    "id, channel, direction, status, external_id, contact_id, operator_id, occurred_at, "
    "answered_at, ended_at, duration_s, from_address, to_address, subject, summary, "
    "recording_ref, queue, campaign_id, call_list_id, extra, created_at"
)
_CHANNEL = "CASE n % 4 WHEN 2 THEN 'sms' WHEN 3 THEN 'email' ELSE 'call' END"
_DIRECTION = "CASE (n / 4) % 2 WHEN 0 THEN 'in' ELSE 'out' END"
_STATUS = (
    "CASE n % 4 WHEN 2 THEN 'delivered' WHEN 3 THEN 'received' "
    "ELSE CASE WHEN n % 7 = 0 THEN 'missed' ELSE 'answered' END END"
)
_DURATION = "CASE WHEN n % 4 < 2 AND n % 7 <> 0 THEN n % 900 END"
_OPERATOR = f"CASE WHEN n % 7 <> 0 THEN 1 + n % {OPERATORS} END"
_SUBJECT = "CASE WHEN n % 4 = 3 THEN 'Re: our offer #' || n ELSE '' END"
_SUMMARY = "CASE WHEN n % 3 = 0 THEN 'Talked about the order, call back next week' ELSE '' END"

SQLITE_INTERACTIONS = f"""
WITH RECURSIVE seq(n) AS (SELECT :lo UNION ALL SELECT n + 1 FROM seq WHERE n < :hi),
hashed(n, contact, at) AS (
    SELECT n, {_CONTACT},
        strftime('%Y-%m-%d %H:%M:%S', {EPOCH_UNIX} + {_TIME}, 'unixepoch')
        || printf('.%06d', {_MICRO})
    FROM seq
)
INSERT INTO interactions ({_COLUMNS})
SELECT n, {_CHANNEL}, {_DIRECTION}, {_STATUS}, printf('bench-%09d', n), contact, {_OPERATOR},
    at, NULL, NULL, {_DURATION}, '+7916' || printf('%07d', contact), '+74951234567',
    {_SUBJECT}, {_SUMMARY}, NULL, NULL, NULL, NULL, '{{}}', at
FROM hashed
"""

PG_INTERACTIONS = f"""
INSERT INTO interactions ({_COLUMNS})
SELECT n, {_CHANNEL}, {_DIRECTION}, {_STATUS}, 'bench-' || lpad(n::text, 9, '0'), contact,
    {_OPERATOR}, at, NULL, NULL, {_DURATION}, '+7916' || lpad(contact::text, 7, '0'),
    '+74951234567', {_SUBJECT}, {_SUMMARY}, NULL, NULL, NULL, NULL, '{{}}', at
FROM (
    SELECT n, {_CONTACT} AS contact,
        timestamp '2023-01-01' + ({_TIME}) * interval '1 second'
            + {_MICRO} * interval '1 microsecond' AS at
    FROM generate_series(:lo::bigint, :hi::bigint) AS n
) AS hashed
"""

_USERS = (
    "INSERT INTO users (id, username, display_name, password_hash, role, extension, active, "
    "created_at) SELECT n, 'operator' || n, 'Operator ' || n, '-', 'operator', NULL, {true}, "
    "{now} FROM {series}"
)
_CONTACTS = (
    "INSERT INTO contacts (id, name, name_key, extra, created_at, updated_at) "
    "SELECT n, 'Customer ' || n, 'customer ' || n, '{{}}', {now}, {now} FROM {series}"
)


def fill_sqlite(path: Path, shape: Shape) -> str:
    """Load ``shape`` into the migrated SQLite file at ``path`` (blocking: run it in a thread)."""
    start = time.perf_counter()
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-1000000")
        connection.execute("PRAGMA temp_store=MEMORY")
        schema = _sqlite_schema(connection)
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'interactions' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        series = "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {}) SELECT n FROM s)"  # noqa: E501
        now = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
        connection.execute("BEGIN")
        connection.execute(_USERS.format(true=1, now=now, series=series.format(OPERATORS)))
        connection.execute(_CONTACTS.format(now=now, series=series.format(shape.contacts)))
        connection.execute("COMMIT")
        params = {"heavy": shape.heavy, "contacts": shape.contacts}
        for lo in range(1, shape.rows + 1, CHUNK):
            hi = min(lo + CHUNK - 1, shape.rows)
            connection.execute("BEGIN")
            connection.execute(SQLITE_INTERACTIONS, {**params, "lo": lo, "hi": hi})
            connection.execute("COMMIT")
            print(f"  {hi:>10} interactions, {time.perf_counter() - start:6.1f} s", flush=True)
        for name, sql in indexes:
            started = time.perf_counter()
            connection.execute(sql)
            print(f"  index {name} rebuilt in {time.perf_counter() - started:.1f} s", flush=True)
        if _sqlite_schema(connection) != schema:
            raise RuntimeError("schema after the load differs from the migrated one")
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()
    return f"{shape.rows} interactions loaded in {time.perf_counter() - start:.1f} s"


def _sqlite_schema(connection: sqlite3.Connection) -> list[tuple[str, ...]]:
    return connection.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
    ).fetchall()


class Driver(Protocol):
    """The two asyncpg calls the load needs (asyncpg ships no type hints)."""

    async def execute(self, query: str) -> str: ...

    async def fetch(self, query: str) -> list[Any]: ...


async def fill_postgres(engine: AsyncEngine, shape: Shape) -> str:
    """Load ``shape`` into the migrated PostgreSQL database behind ``engine``.

    Talks to asyncpg directly, outside SQLAlchemy's transaction, so that each
    chunk commits on its own and VACUUM can run at the end.
    """
    start = time.perf_counter()
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Driver | None = raw.driver_connection
        assert driver is not None
        await driver.execute("SET maintenance_work_mem = '1GB'")
        await driver.execute("SET session_replication_role = replica")  # no FK triggers
        schema = await _pg_schema(driver)
        constraints = await _pg_unique_constraints(driver)
        for name, _ in constraints:
            await driver.execute(f'ALTER TABLE interactions DROP CONSTRAINT "{name}"')
        indexes = await _pg_plain_indexes(driver)
        for name, _ in indexes:
            await driver.execute(f'DROP INDEX "{name}"')
        series = "generate_series(1, {}) AS n"
        await driver.execute(
            _USERS.format(true="true", now="now()", series=series.format(OPERATORS))
        )
        await driver.execute(_CONTACTS.format(now="now()", series=series.format(shape.contacts)))
        params = {"heavy": shape.heavy, "contacts": shape.contacts}
        for lo in range(1, shape.rows + 1, CHUNK):
            hi = min(lo + CHUNK - 1, shape.rows)
            await driver.execute(_with_numbers(PG_INTERACTIONS, {**params, "lo": lo, "hi": hi}))
            print(f"  {hi:>10} interactions, {time.perf_counter() - start:6.1f} s", flush=True)
        for name, definition in constraints:
            started = time.perf_counter()
            await driver.execute(f'ALTER TABLE interactions ADD CONSTRAINT "{name}" {definition}')
            print(f"  constraint {name} rebuilt in {time.perf_counter() - started:.1f} s")
        for name, definition in indexes:
            started = time.perf_counter()
            await driver.execute(definition)
            print(f"  index {name} rebuilt in {time.perf_counter() - started:.1f} s", flush=True)
        for table in ("users", "contacts", "interactions"):
            await driver.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        await driver.execute("SET session_replication_role = origin")
        if await _pg_schema(driver) != schema:
            raise RuntimeError("schema after the load differs from the migrated one")
        started = time.perf_counter()
        await driver.execute("VACUUM (ANALYZE) interactions")
        await driver.execute("ANALYZE contacts")
        print(f"  vacuum analyze in {time.perf_counter() - started:.1f} s")
    return f"{shape.rows} interactions loaded in {time.perf_counter() - start:.1f} s"


def _with_numbers(sql: str, numbers: dict[str, int]) -> str:
    """``sql`` with its ``:name`` placeholders replaced by integers (no driver-side binding)."""
    for name, value in numbers.items():
        sql = sql.replace(f":{name}", str(int(value)))
    return sql


async def _pg_schema(driver: Driver) -> list[tuple[str, str]]:
    """Every index and constraint definition of the public schema."""
    rows = await driver.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
        "UNION ALL SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
    )
    return [(row[0], row[1]) for row in rows]


async def _pg_unique_constraints(driver: Driver) -> list[tuple[str, str]]:
    rows = await driver.fetch(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'interactions'::regclass AND contype = 'u'"
    )
    return [(row[0], row[1]) for row in rows]


async def _pg_plain_indexes(driver: Driver) -> list[tuple[str, str]]:
    """Indexes of the interactions table that no constraint owns."""
    rows = await driver.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'interactions' "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint "
        "WHERE conrelid = 'interactions'::regclass)"
    )
    return [(row[0], row[1]) for row in rows]
