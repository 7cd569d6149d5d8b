"""The fault suite's rig: a real ``commhub serve`` process that can be killed, and its PBX.

The PBX is an :class:`~ami_replay.AmiReplayServer` in the test
process, playing calls recorded from a real Asterisk at their own pace. The
hub is ``python -m commhub serve`` in a subprocess on a data directory (or a
PostgreSQL database) that outlives it: :meth:`FaultRig.kill_hub` is SIGKILL,
``kill -9``, with no cleanup, and :meth:`FaultRig.start_hub` is a new process
on the same database. Two clients watch it as people would: operator 201 on
the live feed (:class:`Feed`, reconnecting after each restart) and an admin
on the API (:class:`Api`).

While a hub starts, the PBX holds its login until the operator's feed is
connected to the new process: a hub links to its PBX before its web server
answers, so otherwise what it pops in its first second would reach nobody.
To the hub that is a PBX slow to accept a login.

A part2 recording is placed on the call's own timeline: its login as long
after part1's as when it was recorded (the ``EventTV`` of each part's
``SuccessfulAuth``), however fast the hub came back. A hub that restarts in
1.5 s where the recorded client took 5 s would otherwise hear the call end
seconds early, and its clock would disagree with the PBX's CDRs.

Waits poll a condition with a deadline (:func:`until`); a wait on the rig
itself (the process, the feed, the PBX link) raises :class:`RigError`, so a
failure there is never mistaken for one of the hub's calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import aiohttp

from ami_replay import AmiReplayServer, Playback
from commhub_asterisk.recordings import Recording, load_recording
from faults.hub_process import START_TIMEOUT_S, HubProcess, RigError

__all__ = ["START_TIMEOUT_S", "RigError"]

AMI: Final = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "ami"
PBX_SECRET: Final = "fault-suite-pbx-secret"
ADMIN_PASSWORD: Final = "the admin's own password"
PASSWORD: Final = "a long enough password for everyone"
OPERATORS: Final = {"anna": "201", "boris": "202"}
MANAGER: Final = "mira"
"""Reads the log, the missed calls, the calls in progress and the channels' health."""

CHANNELS_FILE: Final = """\
[[channels]]
adapter = "asterisk"
name = "main"
host = "127.0.0.1"
port = {port}
username = "commhub"
secret = "{secret}"
trunk_contexts = ["from-trunk", "sim-pstn-out"]
operator_contexts = ["operators", "operators-noanswer", "from-internal"]
region = "RU"
reconnect_max_s = 1
cdr_wait_s = 0.5
"""

T = TypeVar("T")
Json = dict[str, Any]


def recording(name: str) -> Recording:
    return load_recording(AMI, name)


def paced(name: str, *, close_at_end: bool = False) -> Playback:
    """A recording at its recorded pace, as the PBX sent it."""
    return Playback.from_recording(recording(name), paced=True, close_at_end=close_at_end)


def part2(name: str, *, part1_login: float, list_only: bool = False) -> Playback:
    """``NAME.part2`` at its pace, timed from the moment (event loop time) part1 logged in.

    ``list_only``: the PBX answers the channel list and then nothing happens
    (a hub that comes back and goes down again before the call changes).
    """
    playback = paced(f"{name}.part2")
    playback.starts_at = part1_login + recorded_gap(name)
    if list_only:
        playback.rest = ()
    return playback


def recorded_gap(name: str) -> float:
    """Seconds between part1's login and part2's, by the PBX's clock when they were recorded."""

    def login_at(part: str) -> datetime:
        raw = recording(f"{name}.{part}").raw
        found = re.search(rb"Event: SuccessfulAuth\r\n(?:.+\r\n)*?EventTV: (\S+)\r\n", raw)
        if found is None:
            raise RigError(f"{name}.{part} has no SuccessfulAuth with an EventTV")
        return datetime.strptime(found[1].decode(), "%Y-%m-%dT%H:%M:%S.%f%z")

    return (login_at("part2") - login_at("part1")).total_seconds()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(
    probe: Callable[[], Awaitable[T | None]],
    what: str,
    *,
    timeout: float = 20.0,
    error: type[Exception] = AssertionError,
) -> T:
    """Poll ``probe`` until it returns something other than ``None``; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await probe()
        if found is not None:
            return found
        if loop.time() > deadline:
            raise error(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(0.1)


# --- the operator's live feed ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of the live feed, with the hub process that sent it (1 = the first start)."""

    hub: int
    type: str
    data: Json
    restored: bool = False
    """A pop sent again on connect (listed in ``hello``'s ``pops``), not a new one."""

    @property
    def call(self) -> Json:
        call = self.data.get("call")
        return call if isinstance(call, dict) else {}

    def __str__(self) -> str:
        call = self.call
        shown = {k: call.get(k) for k in ("status", "answered_at", "ended_at", "duration_s")}
        restored = " (restored)" if self.restored else ""
        return f"hub {self.hub} {self.type}{restored} {shown}"


@dataclass(slots=True)
class Feed:
    """Operator 201's WebSocket on ``/api/v1/live``: keeps every frame, reconnects when cut."""

    rig: FaultRig
    username: str = "anna"
    frames: list[Frame] = field(default_factory=list)
    connections: int = 0
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Connect, and keep connecting whenever the feed is cut; once is enough."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="operator feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def for_call(self, call_id: str) -> list[Frame]:
        return [f for f in self.frames if f.call.get("id") == call_id]

    async def connected_to(self, hub: int) -> None:
        """Wait for the ``hello`` of hub process number ``hub``."""

        async def hello() -> bool | None:
            if self._task is not None and self._task.done():
                self._task.result()  # the feed client crashed: say how
            return any(f.hub == hub and f.type == "hello" for f in self.frames) or None

        await until(hello, f"operator feed connected to hub {hub}", error=RigError)

    async def _run(self) -> None:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            while True:
                try:
                    await self._listen(http)
                except (aiohttp.ClientError, OSError, TimeoutError):
                    pass
                await asyncio.sleep(0.1)

    async def _listen(self, http: aiohttp.ClientSession) -> None:
        base = self.rig.base_url
        if not any(cookie.key for cookie in http.cookie_jar):
            await login(http, base, self.username, PASSWORD)
        try:
            ws = await http.ws_connect(f"{base}/api/v1/live", headers={"Origin": base})
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                http.cookie_jar.clear()
            raise
        hub = self.rig.hub_number  # the process that answered: only one runs at a time
        self.connections += 1
        restoring: list[str] = []
        async with ws:
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                body = json.loads(message.data)
                data = body.get("data") or {}
                kind = str(body.get("type"))
                if kind == "hello":
                    restoring = [str(p) for p in data.get("pops") or ()]
                call_id = str((data.get("call") or {}).get("id"))
                restored = kind == "call.offered" and call_id in restoring
                if restored:
                    restoring.remove(call_id)
                self.frames.append(Frame(hub, kind, data, restored))


async def login(http: aiohttp.ClientSession, base: str, username: str, password: str) -> None:
    async with http.post(
        f"{base}/api/v1/auth/login", json={"username": username, "password": password}
    ) as response:
        if response.status != 200:
            raise RigError(f"login as {username}: HTTP {response.status} {await response.text()}")


# --- the admin's API client --------------------------------------------------------------------


@dataclass(slots=True)
class Api:
    """The manager reading the API; logs in again when a restart lost the session."""

    base_url: str
    http: aiohttp.ClientSession

    async def get(self, path: str) -> Any:
        for _ in range(3):
            async with self.http.get(f"{self.base_url}{path}") as response:
                if response.status == 401:
                    await login(self.http, self.base_url, MANAGER, PASSWORD)
                    continue
                if response.status != 200:
                    raise AssertionError(f"GET {path}: {response.status} {await response.text()}")
                return await response.json()
        raise RigError(f"GET {path}: still 401 after logging in again")

    async def calls(self) -> list[Json]:
        page = await self.get("/api/v1/interactions?channel=call&limit=500")
        return list(page["items"])

    async def missed(self) -> list[Json]:
        """Every missed-call entry, open or resolved: a call that was never missed has none."""
        page = await self.get("/api/v1/calls/missed?state=all")
        return list(page["items"])

    async def live_calls(self) -> list[Json]:
        return list((await self.get("/api/v1/calls/live"))["items"])

    async def channels(self) -> Json:
        return dict(await self.get("/api/v1/channels"))

    async def pbx(self) -> Json:
        [main] = [c for c in (await self.channels())["items"] if c["name"] == "main"]
        return dict(main)


# --- the rig ---------------------------------------------------------------------------------


class FaultRig:
    """One hub (a process that can be killed and started again), its PBX and its watchers."""

    def __init__(self, folder: Path, *, database_url: str | None) -> None:
        self.folder = folder
        self.database_url = database_url
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.pbx = AmiReplayServer(username="commhub", secret=PBX_SECRET)
        self.feed = Feed(self)
        self.hub = HubProcess(folder, base_url=self.base_url, env=lambda: self.env)
        self.operator_ids: dict[str, int] = {}
        self.notes: list[str] = []
        """What a failing test's report should also say (a hub back later than planned)."""
        self._http: aiohttp.ClientSession | None = None
        self._api: Api | None = None

    @property
    def api(self) -> Api:
        assert self._api is not None, "the rig is not open"
        return self._api

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMMHUB_")}
        env |= {
            "COMMHUB_DATA_DIR": str(self.folder / "var"),
            "COMMHUB_PORT": str(self.port),
            "COMMHUB_CHANNELS_FILE": str(self.folder / "channels.toml"),
            "COMMHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "COMMHUB_PHONE_REGION": "RU",
        }
        if self.database_url:
            env["COMMHUB_DATABASE_URL"] = self.database_url
        return env

    async def open(self) -> None:
        """Start the PBX (not listening yet), write the settings, add the operators."""
        await self.pbx.start()
        (self.folder / "channels.toml").write_text(
            CHANNELS_FILE.format(port=self.pbx.port, secret=PBX_SECRET)
        )
        # The first one migrates the empty database; the others may then run at once.
        await self.add_user(MANAGER, "manager")
        added = await asyncio.gather(
            *(self.add_user(name, "operator", "--extension", x) for name, x in OPERATORS.items())
        )
        self.operator_ids = dict(zip(OPERATORS.values(), added, strict=True))
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self._api = Api(self.base_url, self._http)

    async def close(self) -> None:
        await self.feed.stop()
        await self.stop_hub()
        if self._http is not None:
            await self._http.close()
        await self.pbx.close()

    async def add_user(self, username: str, role: str, *options: str) -> int:
        said = await self.cli(
            "user",
            "add",
            username,
            "--role",
            role,
            *options,
            "--password-stdin",
            stdin=f"{PASSWORD}\n".encode(),
        )
        found = re.search(r"created with id (\d+)", said)
        if found is None:
            raise RigError(f"user add {username}: {said}")
        return int(found[1])

    async def cli(self, *args: str, stdin: bytes | None = None) -> str:
        return await self.hub.cli(*args, stdin=stdin)

    # --- the hub process ---------------------------------------------------------------

    async def start_hub(self, *script: Playback) -> None:
        """A new ``commhub serve`` on the same database; its PBX login plays ``script``.

        Returns once the operator's feed is connected to it and it has logged in
        to the PBX.
        """
        self.pbx.hold_logins()
        self.pbx.script.extend(script)
        logins = self.pbx.logins
        assert self._http is not None
        await self.hub.start(self._http)
        self.feed.start()
        await self.feed.connected_to(self.hub_number)
        self.pbx.release_logins()
        await self.pbx_logins(logins + 1)
        self._note_lateness(script[0] if script else None)

    def _note_lateness(self, playback: Playback | None) -> None:
        """Say so when a hub came back after part of its part2 had already happened.

        The PBX then sends those events as soon as the hub asks: the call ends
        on the hub's clock later than it did (a slow machine; the records'
        assertions still hold).
        """
        if playback is None or playback.starts_at is None or not playback.rest:
            return
        late = self.last_login_at - (playback.starts_at + playback.rest[0][0])
        if late > 0:
            self.notes.append(
                f"hub {self.hub_number} logged in to the PBX {late:.1f}s after the recorded "
                "moment of the events that follow the channel list; they reached it late"
            )

    async def kill_hub(self) -> None:
        """``kill -9``: the process ends where it is, nothing flushed, nothing said."""
        await self.hub.kill()

    async def stop_hub(self) -> None:
        """The end of a test: stop the hub as a user would (Ctrl-C), if one runs."""
        await self.hub.stop()

    def hub_logs(self) -> str:
        """Every hub process's output, for a failing test's report."""
        return self.hub.logs()

    @property
    def hub_number(self) -> int:
        """How many hub processes were started so far; the running one's number."""
        return self.hub.number

    def _running(self) -> asyncio.subprocess.Process:
        return self.hub.running()

    # --- what the PBX saw -------------------------------------------------------------------

    @property
    def last_login_at(self) -> float:
        """The event loop's time of the PBX's latest login (when its playback began)."""
        return self.pbx.login_times[-1]

    async def pbx_logins(self, count: int) -> None:
        """Wait until the PBX has accepted ``count`` logins in all (a hub reconnecting)."""
        try:
            await self.pbx.wait_logins(count, timeout=START_TIMEOUT_S)
        except TimeoutError:
            raise RigError(f"the PBX saw {self.pbx.logins} logins, not {count}") from None

    async def recorded_lists_sent(self, count: int) -> None:
        """Wait until ``count`` recorded channel lists in all answered a hub's question."""
        try:
            await self.pbx.wait_recorded_lists(count, timeout=15)
        except TimeoutError:
            raise RigError(
                f"the PBX sent {self.pbx.recorded_lists_sent} recorded channel lists, not "
                f"{count}: the hub never asked CoreShowChannels after logging in"
            ) from None

    # --- what the hub shows ------------------------------------------------------------------

    async def heard_channel_list(self) -> None:
        """Wait until the running hub is linked and has taken a channel list through its tracker.

        A fresh process has heard no call event before the answer to its
        ``CoreShowChannels`` (the banner and login events are not call events),
        so its ``last_event_at`` is set by that list first; then the call log's
        backlog is written.
        """

        async def heard() -> bool | None:
            self._running()
            status = await self.api.channels()
            [main] = [c for c in status["items"] if c["name"] == "main"]
            ready = main["connected"] and main["last_event_at"] and not status["call_backlog"]
            return True if ready else None

        await until(heard, f"hub {self.hub_number} taking the PBX's channel list", error=RigError)

    async def heard_events_since(self, moment: datetime) -> None:
        """Wait until the running hub has read PBX events after ``moment`` and stored them."""

        async def heard() -> bool | None:
            status = await self.api.channels()
            [main] = [c for c in status["items"] if c["name"] == "main"]
            last = main["last_event_at"]
            if last is None or datetime.fromisoformat(last) < moment:
                return None
            return True if not status["call_backlog"] else None

        await until(heard, f"hub {self.hub_number} reading the replayed events", error=RigError)

    async def the_call(self) -> Json:
        """The one call row there is (fails if there are several)."""
        rows = await self.api.calls()
        assert len(rows) == 1, f"expected one call row, got {len(rows)}: {rows}"
        return rows[0]

    async def call_where(self, ready: Callable[[Json], bool], what: str) -> Json:
        """Wait until the one call row satisfies ``ready``; fail with what it showed last."""
        seen: list[list[Json]] = [[]]

        async def probe() -> Json | None:
            self._running()
            rows = await self.api.calls()
            seen[0] = rows
            return rows[0] if len(rows) == 1 and ready(rows[0]) else None

        try:
            return await until(probe, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the call log showed {seen[0]}") from None


def now() -> datetime:
    return datetime.now(UTC)
