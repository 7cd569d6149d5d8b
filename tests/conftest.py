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

import ami_harness
from ami_replay import AmiReplayServer
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
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None
) -> str:
    """A URL to an empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'commhub.db'}"
    if not postgres_url:
        pytest.skip(f"PostgreSQL backend: set {POSTGRES_ENV} to run")
    await reset_postgres(postgres_url)
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
async def pbx() -> AsyncIterator[AmiReplayServer]:
    """A replay PBX on loopback (``ami_harness``): the recorded Asterisk as a peer."""
    async for server in ami_harness.replay_pbx():
        yield server


@pytest.fixture
def redis_url() -> str:
    """Real Redis for job-queue tests."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"Redis job queue: set {REDIS_ENV} to run")
    return url


# The Dovecot fixture is appended as its own section, imports included.
from dovecot import DovecotServer, dovecot_binary  # noqa: E402

DOVECOT_REQUIRED_ENV = "COMMHUB_TEST_REQUIRE_DOVECOT"


@pytest.fixture(scope="session")
def dovecot_stopping() -> Iterator[list[DovecotServer]]:
    """Dovecot servers told to stop but maybe not gone yet, finished at the end of the run.

    Dovecot 2.3 takes about a second to shut down; letting that happen while
    the next test runs keeps a fresh server per test affordable.
    """
    stopping: list[DovecotServer] = []
    yield stopping
    for server in stopping:
        server.stop()


@pytest.fixture
def dovecot(
    request: pytest.FixtureRequest, dovecot_stopping: list[DovecotServer]
) -> Iterator[DovecotServer]:
    """A fresh Dovecot IMAP server on 127.0.0.1 for one test, with no users yet.

    Function scope: a server starts in about 0.05 s, so every test gets its own
    mailboxes, UIDs and connection limits, and may even stop its server. Options
    go through indirect parametrization, e.g.
    ``@pytest.mark.parametrize("dovecot", [{"idle": False}], indirect=True)``.
    Without Dovecot installed the test skips, unless ``COMMHUB_TEST_REQUIRE_DOVECOT=1``
    (set by ``.ci/run``) makes that a failure. Dovecot's log is printed at
    teardown, so a failing test shows it.
    """
    if dovecot_binary() is None:
        reason = "Dovecot IMAP server: install dovecot-imapd to run"
        if os.environ.get(DOVECOT_REQUIRED_ENV) == "1":
            pytest.fail(f"{reason} ({DOVECOT_REQUIRED_ENV}=1 makes it mandatory)")
        pytest.skip(reason)
    server = DovecotServer(**getattr(request, "param", {}))
    server.start()
    try:
        yield server
    finally:
        print(f"Dovecot log ({server.host}:{server.port}):\n{server.log_text()}")
        server.stop(wait=False)
        for done in [stopped for stopped in dovecot_stopping if not stopped.running]:
            done.stop()
            dovecot_stopping.remove(done)
        dovecot_stopping.append(server)
