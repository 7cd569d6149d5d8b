"""Shared fixtures: the database backends and Redis every store/API/job test runs on.

Store and API tests take the ``engine`` fixture and run twice: on a fresh
SQLite file and, when ``COMMHUB_TEST_POSTGRES_URL`` is set, on PostgreSQL
(``.ci/run`` sets it and makes it mandatory). Job tests take ``redis_url``
(``COMMHUB_TEST_REDIS_URL``). Without those variables the tests skip with a
one-line reason.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from commhub.store.engine import SessionFactory, open_engine, session_factory
from commhub.store.migrate import upgrade

POSTGRES_ENV = "COMMHUB_TEST_POSTGRES_URL"
REDIS_ENV = "COMMHUB_TEST_REDIS_URL"

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'commhub.db'}"
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"PostgreSQL backend: set {POSTGRES_ENV} to run")
    return url


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
