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

from faults.harness import FaultRig


@pytest.fixture
async def rig(tmp_path: Path, database_url: str) -> AsyncIterator[FaultRig]:
    """The hub's processes and their PBX, on an empty database of each backend."""
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
