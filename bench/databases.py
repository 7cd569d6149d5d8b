"""Where the benchmarks keep their databases, and how they make and drop them.

SQLite files live in ``bench/data/`` (git-ignored); PostgreSQL gets one
database per benchmark (``commhub_bench_<name>``) so that a long benchmark
never touches the ``test`` database the test suite resets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from commhub.store.engine import open_engine

DATA_DIR = Path(__file__).resolve().parent / "data"
POSTGRES_SERVER = os.environ.get(
    "COMMHUB_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
"""Any database on the server the benchmarks create theirs on."""

BACKENDS = ("sqlite", "postgres")


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    """One benchmark's database on one backend, and the marker that says it is complete."""

    benchmark: str
    backend: str
    url: str
    marker: Path

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"

    @property
    def sqlite_path(self) -> Path:
        database = make_url(self.url).database
        assert database, "not a SQLite file URL"
        return Path(database)


def bench_database(benchmark: str, backend: str, size: int) -> BenchDatabase:
    """The database of ``benchmark`` holding ``size`` generated rows on ``backend``."""
    marker = DATA_DIR / f"{benchmark}-{backend}-{size}.built"
    if backend == "sqlite":
        path = DATA_DIR / f"{benchmark}-{size}.sqlite"
        return BenchDatabase(benchmark, backend, f"sqlite+aiosqlite:///{path}", marker)
    name = f"commhub_bench_{benchmark}"
    url = make_url(POSTGRES_SERVER).set(database=name)
    return BenchDatabase(benchmark, backend, url.render_as_string(hide_password=False), marker)


def is_built(database: BenchDatabase) -> bool:
    """True when a previous run finished loading this database (and it is still there)."""
    if not database.marker.exists():
        return False
    return not database.is_sqlite or database.sqlite_path.exists()


def mark_built(database: BenchDatabase, summary: str) -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    database.marker.write_text(summary + "\n")


async def recreate(database: BenchDatabase) -> None:
    """Start from nothing: delete the SQLite file or drop and create the PG database."""
    database.marker.unlink(missing_ok=True)
    if not database.is_sqlite:
        # One PG database per benchmark: whatever size was built before is gone now.
        for stale in DATA_DIR.glob(f"{database.benchmark}-{database.backend}-*.built"):
            stale.unlink()
    if database.is_sqlite:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database.sqlite_path}{suffix}").unlink(missing_ok=True)
        return
    await _recreate_postgres(make_url(database.url).database or "")


async def drop(database: BenchDatabase) -> None:
    """Remove the database and its marker (``--drop``)."""
    database.marker.unlink(missing_ok=True)
    if database.is_sqlite:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database.sqlite_path}{suffix}").unlink(missing_ok=True)
        return
    await _admin(f'DROP DATABASE IF EXISTS "{make_url(database.url).database}" WITH (FORCE)')


async def _recreate_postgres(name: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{name}"')


async def _admin(statement: str) -> None:
    engine = open_engine(POSTGRES_SERVER).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()
