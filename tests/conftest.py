"""Shared fixtures: the database backends and Redis every store/API/job test runs on.

Store and API tests take the ``engine`` fixture and run twice: on a fresh
SQLite file and, when ``COMMHUB_TEST_POSTGRES_URL`` is set, on PostgreSQL
(``.ci/run`` sets it and makes it mandatory). Job tests take ``redis_url``
(``COMMHUB_TEST_REDIS_URL``). Without those variables the tests skip with a
one-line reason.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from commhub.store.engine import SessionFactory, open_engine, session_factory
from commhub.store.migrate import upgrade

POSTGRES_ENV = "COMMHUB_TEST_POSTGRES_URL"
REDIS_ENV = "COMMHUB_TEST_REDIS_URL"

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A private database for this test run, made next to the one the variable names.

    Two runs at once (a developer and CI, or parallel sessions) then never
    drop each other's tables. Falls back to the named database itself when
    the role may not create databases.
    """
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        yield None
        return
    private = f"commhub_test_{os.getpid()}_{secrets.token_hex(3)}"
    created = asyncio.run(_admin_sql(url, f'CREATE DATABASE "{private}"'))
    if not created:
        yield url
        return
    yield make_url(url).set(database=private).render_as_string(hide_password=False)
    asyncio.run(_admin_sql(url, f'DROP DATABASE IF EXISTS "{private}" WITH (FORCE)'))


async def _admin_sql(url: str, statement: str) -> bool:
    engine = open_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
        return True
    except DBAPIError:
        return False
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None) -> str:
    """A URL to an empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'commhub.db'}"
    if not postgres_url:
        pytest.skip(f"PostgreSQL backend: set {POSTGRES_ENV} to run")
    return postgres_url


async def reset_postgres(url: str) -> None:
    """Drop everything in the test database's public schema."""
    engine = open_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty database on each backend."""
    if database_url.startswith("postgresql"):
        await reset_postgres(database_url)
    engine = open_engine(database_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)


@pytest.fixture
async def session(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session


@pytest.fixture
def redis_url() -> str:
    """Real Redis for job-queue tests."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"Redis job queue: set {REDIS_ENV} to run")
    return url
