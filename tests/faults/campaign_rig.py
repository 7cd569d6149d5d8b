"""The campaign crash suite's rig: a real hub, real arq workers, a real SMTP server, real kills.

``commhub serve`` (the listener: it owns the mailbox and its dispatcher,
and runs the campaign keeper) and N ``commhub worker`` processes (they
freeze the list and write the messages) share one database and Redis. Any
of them can be killed with SIGKILL and started again. The people, their
consent, the list and the template are written straight into the
database, as an import would; the campaign is created, started, paused and
resumed through the API, as a marketer does. What counts is what aiosmtpd
received.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Final

import aiohttp
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from commhub.config import Settings
from commhub.models import (
    Consent,
    Contact,
    ContactPoint,
    MessageTemplate,
    Segment,
    SegmentMember,
    utcnow,
)
from daylight import midday_zone
from faults.harness import free_port
from faults.hub_process import HubProcess, RigError
from smtp_sink import SmtpSink

PASSWORD: Final = "a long enough password for everyone"
MARKETER: Final = "mia"
MANAGER: Final = "max"
"""Settles messages in doubt (a marketer may not)."""
MAILBOX: Final = "news@example.com"
LEASE_S: Final = 2.0
CHANNELS_FILE: Final = """\
[[channels]]
adapter = "email"
name = "news"
address = "{mailbox}"
[channels.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "plain"
"""


class Workers:
    """``commhub worker`` processes, each killable and restartable by its slot."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.started = 0
        self.killed = 0
        self._running: dict[int, tuple[asyncio.subprocess.Process, IO[bytes]]] = {}

    async def start(self, slot: int) -> None:
        self.started += 1
        log = (self.folder / f"worker-{self.started}.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "commhub", "worker",
            env=self.env, cwd=self.folder, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        self._running[slot] = (process, log)

    async def kill(self, slot: int) -> None:
        process, log = self._running.pop(slot)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        await process.wait()
        log.close()
        self.killed += 1

    async def stop(self) -> None:
        for slot in list(self._running):
            process, log = self._running.pop(slot)
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(process.wait(), 20)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            log.close()

    def logs(self) -> str:
        parts = []
        for number in range(1, self.started + 1):
            path = self.folder / f"worker-{number}.log"
            if path.exists():
                parts.append(f"----- worker {number} -----\n{path.read_text(errors='replace')}")
        return "\n".join(parts)


class CampaignRig:
    def __init__(self, folder: Path, *, database_url: str | None, redis_url: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.redis_url = redis_url
        self.database_url = (
            database_url
            or Settings(
                data_dir=folder / "var",
                _env_file=None,  # type: ignore[call-arg]
            ).effective_database_url
        )
        self.smtp = SmtpSink()
        self.hub = HubProcess(folder, base_url=self.base_url, env=self.env)
        self.workers = Workers(folder, self.env())
        self._http: aiohttp.ClientSession | None = None
        self._csrf = ""
        self._manager: aiohttp.ClientSession | None = None
        self._manager_csrf = ""

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMMHUB_")}
        return env | {
            "COMMHUB_DATA_DIR": str(self.folder / "var"),
            "COMMHUB_DATABASE_URL": self.database_url,
            "COMMHUB_REDIS_URL": self.redis_url,
            "COMMHUB_PORT": str(self.port),
            "COMMHUB_PUBLIC_URL": self.base_url,
            "COMMHUB_CHANNELS_FILE": str(self.folder / "channels.toml"),
            "COMMHUB_ADMIN_PASSWORD": "the admin's own password",
            "COMMHUB_PHONE_REGION": "RU",
            "COMMHUB_OUTBOX_LEASE_S": str(LEASE_S),
            "COMMHUB_TIME_ZONE": midday_zone(),  # everyone's sending hours are now
        }

    async def open(self, *, people: int, workers: int) -> int:
        """Start the peer, the database, the people and the processes; the segment's id."""
        await self.smtp.start()
        (self.folder / "channels.toml").write_text(
            CHANNELS_FILE.format(mailbox=MAILBOX, smtp_port=self.smtp.port)
        )
        await self.hub.cli("migrate")
        await self.hub.cli(
            "user", "add", MARKETER, "--role", "marketer", "--password-stdin",
            stdin=f"{PASSWORD}\n".encode(),
        )  # fmt: skip
        await self.hub.cli(
            "user", "add", MANAGER, "--role", "manager", "--password-stdin",
            stdin=f"{PASSWORD}\n".encode(),
        )  # fmt: skip
        segment_id = await self._people(people)
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self._manager = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        await self.start_hub()
        for slot in range(workers):
            await self.workers.start(slot)
        return segment_id

    async def close(self) -> None:
        await self.workers.stop()
        await self.hub.stop()
        for http in (self._http, self._manager):
            if http is not None:
                await http.close()
        await self.smtp.close()

    async def _people(self, count: int) -> int:
        engine = create_async_engine(self.database_url)
        now = utcnow()
        try:
            async with engine.begin() as connection:
                segment = (
                    await connection.execute(
                        insert(Segment).values(name="Everyone", kind="static").returning(Segment.id)
                    )
                ).scalar_one()
                await connection.execute(
                    insert(MessageTemplate).values(
                        name="News",
                        channel="email",
                        subject="News for {{ contact.name }}",
                        text="Hello {{ contact.name }}\nUnsubscribe: {{ unsubscribe_url }}\n",
                    )
                )
                for start in range(0, count, 2000):
                    numbers = range(start, min(count, start + 2000))
                    ids = (
                        (
                            await connection.execute(
                                insert(Contact).returning(Contact.id),
                                [
                                    {"name": f"person {n:06d}", "name_key": f"person {n:06d}"}
                                    for n in numbers
                                ],
                            )
                        )
                        .scalars()
                        .all()
                    )
                    await connection.execute(
                        insert(ContactPoint),
                        [
                            {
                                "contact_id": i,
                                "kind": "email",
                                "value": f"p{n:06d}@client.example",
                                "match_key": f"p{n:06d}@client.example",
                            }
                            for i, n in zip(ids, numbers, strict=True)
                        ],
                    )
                    await connection.execute(
                        insert(Consent),
                        [
                            {
                                "contact_id": i,
                                "channel": "email",
                                "purpose": "marketing",
                                "granted": True,
                                "source": "test",
                                "recorded_at": now,
                            }
                            for i in ids
                        ],
                    )
                    await connection.execute(
                        insert(SegmentMember),
                        [{"segment_id": segment, "contact_id": i} for i in ids],
                    )
                return int(segment)
        finally:
            await engine.dispose()

    async def start_hub(self) -> None:
        assert self._http is not None
        await self.hub.start(self._http)
        assert self._manager is not None
        self._csrf = await self._login(self._http, MARKETER)
        self._manager_csrf = await self._login(self._manager, MANAGER)

    async def _login(self, http: aiohttp.ClientSession, username: str) -> str:
        async with http.post(
            f"{self.base_url}/api/v1/auth/login",
            json={"username": username, "password": PASSWORD},
        ) as response:
            if response.status != 200:
                raise RigError(f"login: {response.status} {await response.text()}")
            return str((await response.json())["csrf_token"])

    async def request(
        self, method: str, path: str, *, manager: bool = False, **kwargs: Any
    ) -> tuple[int, Any]:
        http, csrf = (self._manager, self._manager_csrf) if manager else (self._http, self._csrf)
        assert http is not None
        kwargs["headers"] = {"X-CSRF-Token": csrf, **kwargs.get("headers", {})}
        async with http.request(method, f"{self.base_url}{path}", **kwargs) as response:
            body = await response.json() if response.content_type.endswith("json") else None
            return response.status, body

    async def campaign(self, segment_id: int, **extra: Any) -> int:
        status, body = await self.request(
            "POST",
            "/api/v1/campaigns",
            json={
                "name": "Crash test",
                "segment_id": segment_id,
                "email_template_id": 1,
                "mailbox": "news",
                **extra,
            },
        )
        if status != 201:
            raise RigError(f"campaign: {status} {body}")
        campaign_id = int(body["id"])
        status, body = await self.request("POST", f"/api/v1/campaigns/{campaign_id}/start")
        if status != 200:
            raise RigError(f"start: {status} {body}")
        return campaign_id

    async def shown(self, campaign_id: int) -> dict[str, Any]:
        status, body = await self.request("GET", f"/api/v1/campaigns/{campaign_id}")
        if status != 200:
            raise RigError(f"campaign {campaign_id}: {status} {body}")
        return dict(body)

    async def settle_doubts(self) -> int:
        """Settle doubts as a person does: dismiss what arrived, resend the rest."""
        status, page = await self.request(
            "GET", "/api/v1/outbox?state=uncertain&limit=500", manager=True
        )
        if status != 200:
            raise RigError(f"outbox: {status} {page}")
        arrived = set(self.received())
        for row in page["items"]:
            to = row["recipients"][0] if row.get("recipients") else ""
            action = "dismiss" if to in arrived else "resend"
            await self.request("POST", f"/api/v1/outbox/{row['id']}/{action}", manager=True)
        return len(page["items"])

    async def finished(self, campaign_id: int, *, timeout: float = 300.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:  # once a second: the counts read the whole campaign
            await self.settle_doubts()
            shown = await self.shown(campaign_id)
            if shown["state"] == "finished":
                return shown
            if loop.time() > deadline:
                raise AssertionError(f"the campaign finishing: not within {timeout:.0f}s: {shown}")
            await asyncio.sleep(1.0)

    def received(self) -> list[str]:
        return [m.rcpt_tos[0] for m in self.smtp.messages]

    def copies(self) -> Counter[str]:
        return Counter(self.received())

    def logs(self) -> str:
        return self.hub.logs() + "\n" + self.workers.logs()


def expected(count: int) -> Sequence[str]:
    return [f"p{n:06d}@client.example" for n in range(count)]
