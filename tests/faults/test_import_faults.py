"""A 100,000-row import across three ``kill -9``s: resumed each time, exact at the end.

A real ``commhub serve`` (in-process jobs, as on a fresh machine) imports a
spreadsheet of 90,000 people in which every tenth row repeats an earlier
person. It is killed with SIGKILL just after the import starts, half-way and
near the end; each new process finds the import ``interrupted`` and a manager
resumes it. At the end the contacts are exactly the distinct people, the
counters are those of an uninterrupted run, and the rejected-rows file lists
each duplicate once.

Run alone with ``pytest -m faults``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
from sqlalchemy import func, select

from commhub.models import Contact, ContactPoint
from commhub.store.engine import open_engine
from faults.harness import ADMIN_PASSWORD, MANAGER, PASSWORD, free_port, login, until
from faults.hub_process import HubProcess

# Some 75 s per database on an idle CI machine: past the suite's 120 s per test on a busy one.
pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

ROWS: Final = 100_000
PEOPLE: Final = 90_000
MAPPING: Final = {"name": "Name", "phones": ["Phone"], "emails": ["E-mail"]}
KILL_AT: Final = (("just after start", 0.0), ("mid-way", 0.5), ("near the end", 0.9))
"""Where each kill falls: the share of rows the import has committed when it is killed."""


def person(row: int) -> int:
    """Every tenth row repeats the person five rows before it (a duplicate in the file)."""
    return row - 5 if row % 10 == 9 else row


def spreadsheet(path: Path) -> Path:
    lines = ["Name,Phone,E-mail"]
    for row in range(ROWS):
        p = person(row)
        lines.append(f"Person {p},+7916{p:07d},p{p}@example.com")
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


class ImportHub:
    """``commhub serve`` processes on one database, killed and started again; a manager's client."""

    def __init__(self, folder: Path, database_url: str) -> None:
        self.folder = folder
        self.database_url = database_url
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.hub = HubProcess(folder, base_url=self.base, env=self.env)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMMHUB_")}
        return env | {
            "COMMHUB_DATA_DIR": str(self.folder / "var"),
            "COMMHUB_PORT": str(self.port),
            "COMMHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "COMMHUB_PHONE_REGION": "RU",
            "COMMHUB_DATABASE_URL": self.database_url,
        }

    async def cli(self, *args: str, stdin: bytes | None = None) -> str:
        return await self.hub.cli(*args, stdin=stdin)

    async def start(self) -> None:
        await self.hub.start(self.http)
        await login(self.http, self.base, MANAGER, PASSWORD)
        self.csrf = (await self.get("/api/v1/auth/me"))["csrf_token"]

    async def kill(self) -> None:
        await self.hub.kill()

    async def stop(self) -> None:
        await self.hub.stop()
        await self.http.close()

    async def get(self, path: str) -> Any:
        async with self.http.get(f"{self.base}{path}") as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def post(self, path: str, **kw: Any) -> Any:
        headers = {"X-CSRF-Token": self.csrf}
        async with self.http.post(f"{self.base}{path}", headers=headers, **kw) as response:
            assert response.status in (200, 202), await response.text()
            return await response.json()

    def logs(self) -> str:
        return self.hub.logs()[-12000:]


async def test_import_killed_three_times_and_resumed_ends_with_each_person_once(
    tmp_path: Path, database_url: str
) -> None:
    source = spreadsheet(tmp_path / "people.csv")
    hub = ImportHub(tmp_path, database_url)
    await hub.cli("migrate")
    await hub.cli(
        "user",
        "add",
        MANAGER,
        "--role",
        "manager",
        "--password-stdin",
        stdin=f"{PASSWORD}\n".encode(),
    )
    try:
        await hub.start()
        with source.open("rb") as upload:
            form = aiohttp.FormData()
            form.add_field("mapping", json.dumps(MAPPING))
            form.add_field("file", upload, filename="people.csv")
            url = f"/api/v1/imports/{(await hub.post('/api/v1/imports', data=form))['id']}"
        seen: list[tuple[str, int]] = []
        for point, share in KILL_AT:

            async def reached(share: float = share) -> dict[str, Any] | None:
                state = dict(await hub.get(url))
                assert state["status"] in ("queued", "running"), state
                running = state["status"] == "running"
                return state if running and state["rows_done"] >= share * ROWS else None

            await until(reached, f"import {point}", timeout=300)
            await hub.kill()
            await hub.start()
            state = await hub.get(url)
            assert state["status"] == "interrupted", state
            seen.append((point, state["rows_done"]))
            assert await hub.post(f"{url}/resume")
        done = await until(lambda: _finished(hub, url), "import finished", timeout=600)
        assert (done["status"], done["rows_done"], done["created"], done["merged"]) == (
            "done",
            ROWS,
            PEOPLE,
            0,
        ), (done, seen)
        assert done["rejected"] == ROWS - PEOPLE
        async with hub.http.get(f"{hub.base}{done['errors_url']}") as answer:
            text = (await answer.read()).decode("utf-8-sig")
        rejected = [row[0] for row in csv.reader(io.StringIO(text))][1:]
        assert len(rejected) == len(set(rejected)) == ROWS - PEOPLE
        assert {int(r) for r in rejected} == {r + 2 for r in range(ROWS) if r % 10 == 9}
    finally:
        await hub.stop()
        print(hub.logs())
    engine = open_engine(database_url)
    try:
        async with engine.connect() as connection:
            contacts = await connection.scalar(select(func.count()).select_from(Contact))
            points = await connection.scalar(select(func.count()).select_from(ContactPoint))
    finally:
        await engine.dispose()
    assert (contacts, points) == (PEOPLE, 2 * PEOPLE), seen
    # Each kill fell where it was meant to: the first before much was done, the others later.
    assert seen[0][1] < seen[1][1] < seen[2][1] < ROWS, seen


async def _finished(hub: ImportHub, url: str) -> dict[str, Any] | None:
    state = dict(await hub.get(url))
    return state if state["status"] not in ("queued", "running") else None
