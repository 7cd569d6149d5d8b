"""Imports of the same people at once through several arq worker processes on PostgreSQL.

Each worker takes one of the jobs at the same moment; the import turn (a
database lock and a lease, not a lock in one process's memory) makes them run
one after the other, so the contacts are the distinct people, once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from tests.app_fixtures import ClientMaker
from tests.integration.api.test_imports_exact import contacts, people_csv, started, until

from commhub.bootstrap import Hub, open_hub
from commhub.config import Settings
from commhub.store.engine import SessionFactory
from commhub.web.app import create_app

WORKERS = 3


async def test_imports_run_by_several_worker_processes_never_interleave(
    aiohttp_client: ClientMaker,
    settings: Settings,
    database_url: str,
    redis_url: str,
    manager: dict[str, str],
    sessions: SessionFactory,
    tmp_path: Path,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("arq workers in production run on PostgreSQL")
    shared = settings.model_copy(update={"redis_url": redis_url})
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMHUB_")} | {
        "COMMHUB_DATABASE_URL": database_url,
        "COMMHUB_REDIS_URL": redis_url,
        "COMMHUB_DATA_DIR": str(settings.data_dir),
        "COMMHUB_PHONE_REGION": settings.phone_region,
    }
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "commhub",
            "worker",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(WORKERS)
    ]
    try:

        async def opener() -> Hub:
            return await open_hub(shared)

        client: TestClient[Any, Any] = await aiohttp_client(create_app(opener))
        sheet = people_csv(3000)
        urls = await asyncio.gather(*(started(client, manager, sheet) for _ in range(WORKERS)))
        reports = [await until(client, url, manager, "done", timeout=180) for url in urls]
        assert await contacts(sessions) == 3000
        assert sorted(r["created"] for r in reports) == [0] * (WORKERS - 1) + [3000]
        assert sum(r["merged"] for r in reports) == 3000 * (WORKERS - 1)
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                await asyncio.wait_for(worker.communicate(), 20)
            except TimeoutError:
                worker.kill()
                await worker.wait()
