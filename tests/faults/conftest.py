"""The fault suite's fixture: a :class:`~faults.harness.FaultRig` on each database backend.

SQLite is the embedded default (a file in the hub's data directory, shared by
every process started on it); PostgreSQL runs when ``COMMHUB_TEST_POSTGRES_URL``
is set, in the private database the root conftest makes for the run, emptied
before each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from commhub.store.engine import open_engine
from faults.harness import FaultRig


@pytest.fixture(params=["sqlite", "postgres"])
async def rig(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None
) -> AsyncIterator[FaultRig]:
    database_url = None
    if request.param == "postgres":
        if not postgres_url:
            pytest.skip("PostgreSQL backend: set COMMHUB_TEST_POSTGRES_URL to run")
        await _empty(postgres_url)
        database_url = postgres_url
    rig = FaultRig(tmp_path, database_url=database_url)
    try:
        await rig.open()
        yield rig
    finally:
        await rig.close()
        # Shown with a failing test's report: what each hub process said, what 201 saw.
        print(rig.hub_logs()[-20000:])
        print("\n".join(rig.notes))
        print("----- operator 201's feed -----")
        print("\n".join(str(frame) for frame in rig.feed.frames))


async def _empty(url: str) -> None:
    """Drop everything a previous test left in the database."""
    engine = open_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()
