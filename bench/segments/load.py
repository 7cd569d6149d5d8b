"""Fill a migrated database with a contact base and its history, generated inside the database.

Every value comes from the row number ``n`` through integer hashes (no
``random()``), so both backends hold the same data. ``END`` is the data's
"now": interactions reach back two years from it, and the benchmark's rules
name dates relative to it, so a database built today answers the same counts
next month. What a contact gets:

- a phone for everyone, an e-mail for every second contact;
- a city among twenty (Moscow about a third), an owner for four in five;
- zero to two of 40 tags; e-mail marketing consent for three in four (a fifth
  of those withdrawn), SMS marketing consent for one in three;
- a deal for one in eight in the migrations' default pipeline (open, won or
  lost), a campaign e-mail (sent or bounced) for one in six, one contact in
  101 merged into its neighbour;
- ``rows`` interactions spread evenly (calls half, SMS and e-mail a quarter
  each, in and out), a seventh of calls missed; inbound missed calls are also
  in ``missed_calls`` as the hub files them.

The interactions' secondary indexes are dropped for the load and rebuilt from
their own saved definitions; the load then checks the schema is the migrated one.
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
TAGS: Final = 40
END_UNIX: Final = 1_796_083_200  # 2026-12-01T00:00:00Z, the data's "now"
END_ISO: Final = "2026-12-01"
SPAN_S: Final = 2 * 365 * 86_400
CITIES: Final = (
    ("Moscow",) * 7
    + ("Saint Petersburg",) * 3
    + ("Kazan", "Novosibirsk", "Yekaterinburg", "Samara", "Omsk", "Ufa", "Perm")
    + ("Voronezh", "Volgograd", "Krasnodar")
)


@dataclass(frozen=True, slots=True)
class Shape:
    contacts: int
    rows: int


@dataclass(frozen=True, slots=True)
class Sql:
    """The few fragments that differ between the backends."""

    sqlite: bool

    def series(self, lo: int, hi: int) -> str:
        if self.sqlite:
            return (
                f"(WITH RECURSIVE s(n) AS (SELECT {lo} UNION ALL SELECT n + 1 FROM s "
                f"WHERE n < {hi}) SELECT n FROM s) AS g"
            )
        return f"generate_series({lo}::bigint, {hi}::bigint) AS g(n)"

    def moment(self, seconds_before_end: str) -> str:
        if self.sqlite:
            return (
                f"strftime('%Y-%m-%d %H:%M:%S', {END_UNIX} - ({seconds_before_end}), "
                "'unixepoch') || '.000000'"
            )
        return f"(timestamp '{END_ISO}' - ({seconds_before_end}) * interval '1 second')"

    def pad7(self, number: str) -> str:
        return f"printf('%07d', {number})" if self.sqlite else f"lpad(({number})::text, 7, '0')"

    def json(self, text: str) -> str:
        return text if self.sqlite else f"({text})::json"

    def amount(self, units: str) -> str:
        return f"({units}) * 10000" if self.sqlite else f"({units})"

    @property
    def true(self) -> str:
        return "1" if self.sqlite else "true"


def _hash(expr: str, odd: int) -> str:
    return f"((({expr}) * {odd}) % 4294967296)"


def _city(n: str) -> str:
    cases = " ".join(f"WHEN {i} THEN '{city}'" for i, city in enumerate(CITIES))
    return f"CASE {_hash(n, 2654435761)} % {len(CITIES)} {cases} END"


_CITY_JSON: Final = """'{{"city": "' || {city} || '"}}'"""


def base_statements(sql: Sql, shape: Shape) -> list[str]:
    """Everything but the interactions: users, contacts, points, tags, consents, deals, outbox."""
    c = shape.contacts
    now = sql.moment("0")
    created = sql.moment(f"{_hash('n', 40503)} % {3 * SPAN_S}")
    return [
        "INSERT INTO users (id, username, display_name, password_hash, role, extension, active, "
        f"created_at) SELECT n, 'operator' || n, 'Operator ' || n, '-', 'operator', NULL, "
        f"{sql.true}, {now} FROM {sql.series(1, OPERATORS)}",
        "INSERT INTO contacts (id, name, name_key, company_id, owner_id, extra, merged_into_id, "
        "import_id, time_zone, created_at, updated_at) "
        f"SELECT n, 'Customer ' || n, 'customer ' || n, NULL, "
        f"CASE WHEN n % 5 <> 0 THEN 1 + n % {OPERATORS} END, "
        f"{sql.json(_CITY_JSON.format(city=_city('n')))}, "
        f"CASE WHEN n % 101 = 0 THEN n - 1 END, NULL, NULL, {created}, {created} "
        f"FROM {sql.series(1, c)}",
        "INSERT INTO contact_points (id, contact_id, kind, value, match_key, label, created_at) "
        f"SELECT n, n, 'phone', '+7916' || {sql.pad7('n')}, '916' || {sql.pad7('n')}, '', {now} "
        f"FROM {sql.series(1, c)}",
        "INSERT INTO contact_points (id, contact_id, kind, value, match_key, label, created_at) "
        f"SELECT {c} + n, 2 * n, 'email', 'customer' || (2 * n) || '@example.com', "
        f"'customer' || (2 * n) || '@example.com', '', {now} FROM {sql.series(1, c // 2)}",
        f"INSERT INTO tags (id, name) SELECT n, 'tag-' || n FROM {sql.series(1, TAGS)}",
        "INSERT INTO contact_tags (contact_id, tag_id) "
        f"SELECT n, 1 + {_hash('n', 2246822519)} % {TAGS} FROM {sql.series(1, c)} "
        "WHERE n % 3 <> 0",
        "INSERT INTO contact_tags (contact_id, tag_id) "
        f"SELECT n, 1 + {_hash('n', 3266489917)} % {TAGS} FROM {sql.series(1, c)} "
        f"WHERE n % 2 = 0 AND (n % 3 = 0 OR {_hash('n', 3266489917)} % {TAGS} "
        f"<> {_hash('n', 2246822519)} % {TAGS})",
        "INSERT INTO consents (id, contact_id, channel, purpose, granted, source, recorded_at, "
        f"recorded_by_id) SELECT 2 * n, n, 'email', 'marketing', n % 5 <> 0, 'bench', {now}, "
        f"NULL FROM {sql.series(1, c)} WHERE n % 4 <> 0",
        "INSERT INTO consents (id, contact_id, channel, purpose, granted, source, recorded_at, "
        f"recorded_by_id) SELECT 2 * n + 1, n, 'sms', 'marketing', n % 2 = 0, 'bench', {now}, "
        f"NULL FROM {sql.series(1, c)} WHERE n % 3 = 0",
        "INSERT INTO deals (id, pipeline_id, stage_id, contact_id, company_id, title, amount, "
        "currency, owner_id, source, expected_close_on, next_step, next_step_due_on, "
        "lost_reason, notes, origin_key, stage_entered_at, closed_at, created_by_id, "
        "created_at, updated_at) "
        f"SELECT n, 1, 1 + {_hash('n', 40503)} % 5, 8 * n, NULL, 'Deal ' || n, "
        f"{sql.amount(_hash('n', 2654435761) + ' % 100000')}, 'RUB', 1 + n % {OPERATORS}, "
        f"'manual', NULL, '', NULL, '', '', NULL, {now}, "
        f"CASE WHEN {_hash('n', 40503)} % 5 >= 3 THEN "
        f"{sql.moment(_hash('n', 2246822519) + f' % {SPAN_S}')} END, NULL, {now}, {now} "
        f"FROM {sql.series(1, c // 8)}",
        "INSERT INTO outbox (id, key, channel, source, interaction_id, contact_id, campaign_id, "
        "user_id, sender, recipients, state, attempts, last_error, reply, next_attempt_at, "
        "created_at, sent_at, claimed_by, claimed_at, lease_until, request_hash, resolved_by, "
        "resolved_at) "
        f"SELECT n, 'bench-' || n, 'email', 'campaign', n, 6 * n, 1, NULL, 'shop@example.com', "
        f"{sql.json(_EMPTY)}, CASE WHEN n % 5 = 0 THEN 'bounced' ELSE 'sent' "
        f"END, 1, NULL, NULL, NULL, {now}, NULL, NULL, NULL, NULL, NULL, NULL, NULL "
        f"FROM {sql.series(1, c // 6)}",
    ]


_EMPTY: Final = "'{}'"
_ICOLUMNS = (
    "id, channel, direction, status, external_id, contact_id, operator_id, occurred_at, "
    "answered_at, ended_at, duration_s, from_address, to_address, subject, summary, "
    "recording_ref, queue, campaign_id, call_list_id, extra, created_at"
)


def interaction_statements(sql: Sql, shape: Shape, lo: int, hi: int) -> list[str]:
    contact = f"1 + {_hash('n', 2246822519)} % {shape.contacts}"
    at = sql.moment(f"{_hash('n', 2654435761)} % {SPAN_S}")
    return [
        f"INSERT INTO interactions ({_ICOLUMNS}) "
        "SELECT n, CASE n % 4 WHEN 2 THEN 'sms' WHEN 3 THEN 'email' ELSE 'call' END, "
        "CASE (n / 4) % 2 WHEN 0 THEN 'in' ELSE 'out' END, "
        "CASE n % 4 WHEN 2 THEN 'delivered' WHEN 3 THEN 'received' "
        "ELSE CASE WHEN n % 7 = 0 THEN 'missed' ELSE 'answered' END END, "
        f"'bench-' || n, contact, CASE WHEN n % 7 <> 0 THEN 1 + n % {OPERATORS} END, at, "
        "NULL, NULL, NULL, '+7916' || contact, '+74951234567', '', '', NULL, NULL, NULL, NULL, "
        f"{sql.json(_EMPTY)}, at "
        f"FROM (SELECT n, {contact} AS contact, {at} AS at FROM {sql.series(lo, hi)}) AS h",
        "INSERT INTO missed_calls (id, interaction_id, contact_id, number, match_key, "
        "occurred_at, state) SELECT id, id, contact_id, from_address, substr(from_address, 3), "
        "occurred_at, 'open' FROM interactions "
        f"WHERE id BETWEEN {lo} AND {hi} AND channel = 'call' AND direction = 'in' "
        "AND status = 'missed'",
    ]


def fill_sqlite(path: Path, shape: Shape) -> str:
    """Load ``shape`` into the migrated SQLite file at ``path`` (blocking: run it in a thread)."""
    start = time.perf_counter()
    sql = Sql(sqlite=True)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-2000000"):
            connection.execute(f"PRAGMA {pragma}")
        connection.execute("PRAGMA temp_store=MEMORY")
        schema = _sqlite_schema(connection)
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'interactions' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        connection.execute("BEGIN")
        for statement in base_statements(sql, shape):
            connection.execute(statement)
        connection.execute("COMMIT")
        print(f"  contacts and the rest, {time.perf_counter() - start:6.1f} s", flush=True)
        for lo in range(1, shape.rows + 1, CHUNK):
            hi = min(lo + CHUNK - 1, shape.rows)
            connection.execute("BEGIN")
            for statement in interaction_statements(sql, shape, lo, hi):
                connection.execute(statement)
            connection.execute("COMMIT")
            print(f"  {hi:>10} interactions, {time.perf_counter() - start:6.1f} s", flush=True)
        for name, definition in indexes:
            started = time.perf_counter()
            connection.execute(definition)
            print(f"  index {name} rebuilt in {time.perf_counter() - started:.1f} s", flush=True)
        if _sqlite_schema(connection) != schema:
            raise RuntimeError("schema after the load differs from the migrated one")
        connection.execute("ANALYZE")
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()
    return (
        f"{shape.contacts} contacts, {shape.rows} interactions loaded in "
        f"{time.perf_counter() - start:.1f} s"
    )


def _sqlite_schema(connection: sqlite3.Connection) -> list[tuple[str, ...]]:
    return connection.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE name NOT LIKE 'sqlite_stat%' ORDER BY name"
    ).fetchall()


class Driver(Protocol):
    """The two asyncpg calls the load needs (asyncpg ships no type hints)."""

    async def execute(self, query: str) -> str: ...

    async def fetch(self, query: str) -> list[Any]: ...


async def fill_postgres(engine: AsyncEngine, shape: Shape) -> str:
    """Load ``shape`` into the migrated PostgreSQL database behind ``engine``."""
    start = time.perf_counter()
    sql = Sql(sqlite=False)
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Driver | None = raw.driver_connection
        assert driver is not None
        await driver.execute("SET maintenance_work_mem = '1GB'")
        await driver.execute("SET session_replication_role = replica")  # no FK triggers
        schema = await _pg_schema(driver)
        rows = await driver.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'interactions' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint "
            "WHERE conrelid = 'interactions'::regclass)"
        )
        indexes = [(row[0], row[1]) for row in rows]
        for name, _ in indexes:
            await driver.execute(f'DROP INDEX "{name}"')
        for statement in base_statements(sql, shape):
            await driver.execute(statement)
        print(f"  contacts and the rest, {time.perf_counter() - start:6.1f} s", flush=True)
        for lo in range(1, shape.rows + 1, CHUNK):
            hi = min(lo + CHUNK - 1, shape.rows)
            for statement in interaction_statements(sql, shape, lo, hi):
                await driver.execute(statement)
            print(f"  {hi:>10} interactions, {time.perf_counter() - start:6.1f} s", flush=True)
        for name, definition in indexes:
            started = time.perf_counter()
            await driver.execute(definition)
            print(f"  index {name} rebuilt in {time.perf_counter() - started:.1f} s", flush=True)
        for table in (
            "users",
            "contacts",
            "contact_points",
            "tags",
            "consents",
            "pipelines",
            "stages",
            "deals",
            "outbox",
            "interactions",
            "missed_calls",
        ):
            await driver.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        await driver.execute("SET session_replication_role = origin")
        if await _pg_schema(driver) != schema:
            raise RuntimeError("schema after the load differs from the migrated one")
        await driver.execute("VACUUM (ANALYZE)")
    return (
        f"{shape.contacts} contacts, {shape.rows} interactions loaded in "
        f"{time.perf_counter() - start:.1f} s"
    )


async def _pg_schema(driver: Driver) -> list[tuple[str, str]]:
    rows = await driver.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
        "UNION ALL SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
    )
    return [(row[0], row[1]) for row in rows]
