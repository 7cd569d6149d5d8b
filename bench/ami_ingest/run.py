"""Benchmark: a burst of thousands of concurrent calls read off the AMI into call records.

    .venv/bin/python bench/ami_ingest/run.py [--copies 200] [--rounds 5] [--tcp-rounds 3]
        [--restart-rounds 3] [--no-hub]

Scales the recorded ``inbound_burst_10`` stream (``scale_burst``: ten calls
per copy, each ~80 AMI messages, all in progress at once) and measures, in
the same run and interleaved round by round, the adapter against
panoramisk's bare parse of the same bytes:

1. in process, the same 64 KiB chunks: ``MessageReader`` + ``CallTracker``
   producing call records against ``AMIProtocol.data_received`` with a
   factory that only counts the messages it is handed;
2. over TCP loopback from an ``AmiReplayServer`` in a child process: a real
   ``AmiChannel`` from connect to ``drained()`` with every call ended, against
   a bare ``AMIProtocol`` that logs in and counts the same messages;
3. (no target) the whole hub: ``open_hub`` on a fresh SQLite file in
   ``bench/data/``, until every call is stored as ended;
4. a hub restart with 200 calls up (20 copies, cut after the last
   ``BridgeEnter``): a first hub, in a process of its own, reads until the
   200 calls are stored answered and is killed (SIGKILL); a new hub on the
   same database logs in to a PBX whose ``CoreShowChannels`` lists the 800
   channels still up. Timed from the new link's login until the tracker has
   adopted every call and the core has written the adoption and checked the
   log's open calls against the list; then the rest of the stream ends the
   calls, which must be stored once each, as the fault-free run stores them.
   Beside it, alternated round by round, the fault-free path: the same 200
   calls through the whole hub as in 3.

Both sides count the same AMI messages, so events/s compare directly.
Target, for 1 and 2: >= 10,000 events/s on one core and >= 80 % of the bare
parse rate; for 4: the 200 calls reconciled within 1 s of the login (median
round). Exits non-zero when a target is missed or a side's output is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing
import os
import statistics
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # the AMI replay peer

from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message
from sqlalchemy import Select, func, select

from ami_replay import AmiReplayServer, Chunks, Playback
from commhub.bootstrap import Hub, open_hub
from commhub.channels import CallOffered, CallUpdated, InboundEvent
from commhub.config import Settings
from commhub.domain.interactions import Status
from commhub.models import Interaction
from commhub.store.engine import SessionFactory, open_engine, session_factory
from commhub_asterisk import AmiChannel
from commhub_asterisk.config import PbxSettings
from commhub_asterisk.dialplan import Dialplan
from commhub_asterisk.recordings import Recording, load_recording, scale_burst, split_blocks
from commhub_asterisk.tracker import CallTracker
from commhub_asterisk.wire import END, Headers, MessageReader
from databases import DATA_DIR

TARGET_EVENTS_PER_S: Final = 10_000
TARGET_RATIO: Final = 0.8
CHUNK: Final = 64 * 1024
"""In-process read size; over TCP the event loop reads up to 256 KiB at a time."""
FIXTURES: Final = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "ami"
RECORDING: Final = "inbound_burst_10"
CALLS_PER_COPY: Final = 10
TALK_S: Final = 4
"""Every call of the burst is answered by 201 and talks four seconds (fixtures README)."""
USERNAME: Final = "commhub"
SECRET: Final = "bench-secret"
REGION: Final = "RU"
PBX: Final = PbxSettings(
    username=USERNAME,
    secret=SECRET,
    trunk_contexts=("from-trunk", "sim-pstn-out"),
    operator_contexts=("operators", "operators-noanswer", "from-internal"),
    region=REGION,
)
PLAYBACKS: Final = 64
"""Logins the replay server answers with the stream (more than any run makes)."""
SLOWEST_EVENTS_PER_S: Final = TARGET_EVENTS_PER_S / 4
"""A run slower than this is abandoned: the target is missed by far already."""
HUB_DATABASE: Final = DATA_DIR / "ami_ingest.sqlite"
RESTART_COPIES: Final = 20
"""Two hundred calls answered and talking when the hub restarts."""
TARGET_RECONCILE_S: Final = 1.0
RESTART_DATABASE: Final = DATA_DIR / "ami_ingest-restart.sqlite"
FAULT_FREE_DATABASE: Final = DATA_DIR / "ami_ingest-fault-free.sqlite"
CALLS_UP_TIMEOUT_S: Final = 60.0
RECONCILE_TIMEOUT_S: Final = 30.0
"""A takeover slower than this is abandoned: the target is missed by far already."""


# --- what each side produced -----------------------------------------------------------------


@dataclass(slots=True)
class CallRecords:
    """The newest snapshot of every call the adapter reported, as the core's sink keeps them."""

    expected: int
    latest: dict[str, CallUpdated] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)
    offers: int = 0
    all_ended: asyncio.Event | None = None

    def sink(self, event: InboundEvent) -> None:
        if isinstance(event, CallOffered):
            self.offers += 1
        if not isinstance(event, CallUpdated):
            return
        self.latest[event.external_id] = event
        if event.ended:
            self.ended.add(event.external_id)
            if len(self.ended) == self.expected and self.all_ended is not None:
                self.all_ended.set()

    def problems(self) -> list[str]:
        """What differs from the recording: ten answered 4-second calls with one pop per copy."""
        found = []
        if len(self.ended) != self.expected:
            found.append(f"{len(self.ended)} of {self.expected} calls ended")
        wrong = [
            call
            for call in self.latest.values()
            if call.status is not Status.ANSWERED or call.duration_s != TALK_S
        ]
        if wrong:
            found.append(f"{len(wrong)} calls not answered for {TALK_S} s, e.g. {wrong[0]!r}")
        if self.offers != self.expected:
            found.append(f"{self.offers} screen-pop offers for {self.expected} calls")
        return found


class CountingFactory:
    """The least a panoramisk protocol's factory can be: it counts what it is handed."""

    forgetable_actions: tuple[str, ...] = ("login",)

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.events = 0
        self.awaiting_actions: deque[Any] = deque()
        self.all_read: asyncio.Event | None = None

    def dispatch(self, message: Message) -> None:
        self.events += 1
        if self.events == self.expected and self.all_read is not None:
            self.all_read.set()

    def connection_lost(self, exc: Exception | None) -> None:
        pass


class CountedProtocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's protocol as it comes, wired to a :class:`CountingFactory` (as Manager does)."""

    def __init__(self, factory: CountingFactory) -> None:
        super().__init__()
        self._counting = factory

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.factory = self._counting
        self.encoding = "utf-8"


# --- timings -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """Wall and process CPU seconds of one timed stretch."""

    wall: float
    cpu: float

    @classmethod
    def since(cls, start: Span) -> Span:
        now = Span.now()
        return cls(now.wall - start.wall, now.cpu - start.cpu)

    @classmethod
    def now(cls) -> Span:
        return cls(time.perf_counter(), time.process_time())


Run = Callable[[], Awaitable[Span]]
"""One run of one side: sets up, times its own work, checks its output, returns the time."""


@dataclass(slots=True)
class Rates:
    """Wall and CPU seconds of each run of one side over the same ``messages``."""

    name: str
    messages: int
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)

    async def time(self, run: Run) -> None:
        gc.collect()
        span = await run()
        self.seconds.append(span.wall)
        self.cpu_seconds.append(span.cpu)

    @property
    def median(self) -> float:
        """Events per second of the median run."""
        return self.messages / statistics.median(self.seconds) if self.seconds else 0.0

    @property
    def best(self) -> float:
        return self.messages / min(self.seconds) if self.seconds else 0.0

    def summary(self) -> str:
        cpu = sum(self.cpu_seconds) / sum(self.seconds) if self.seconds else 0.0
        return (
            f"{self.name} {self.median:>9,.0f} ev/s median, {self.best:>9,.0f} best "
            f"({statistics.median(self.seconds) if self.seconds else 0:.2f} s, cpu {cpu:4.0%})"
        )


@dataclass(frozen=True, slots=True)
class Throughput:
    """The adapter against the bare parse, with the targets it must meet."""

    label: str
    measured: Rates
    baseline: Rates
    wrong: tuple[str, ...] = ()

    @property
    def ratio(self) -> float:
        return self.measured.median / self.baseline.median if self.baseline.median else 0.0

    def met(self) -> bool:
        return (
            not self.wrong
            and len(self.measured.seconds) == len(self.baseline.seconds) > 0
            and self.measured.median >= TARGET_EVENTS_PER_S
            and self.ratio >= TARGET_RATIO
        )

    def line(self) -> str:
        verdict = "ok" if self.met() else "MISSED"
        return (
            f"{self.label:<14} n={len(self.measured.seconds)}  {self.measured.summary()} | "
            f"{self.baseline.summary()} | ratio {self.ratio:4.2f}x (>= {TARGET_RATIO:g}x)  "
            f"target >= {TARGET_EVENTS_PER_S:,} ev/s: {verdict}"
        )


# --- 1. in process -----------------------------------------------------------------------------


def new_tracker() -> CallTracker:
    return CallTracker(
        source="asterisk:bench",
        pbx="bench",
        dialplan=Dialplan(PBX, region=REGION),
        cdr=PBX.cdr,
        cdr_wait_s=PBX.cdr_wait_s,
    )


def adapter_in_process(chunks: Sequence[bytes], records: CallRecords) -> None:
    """What the link does per read, without the socket and the queue: reader → tracker → sink."""
    tracker = new_tracker()
    now = datetime.now(UTC)

    def on_event(name: str, headers: Headers) -> None:
        for event in tracker.handle(name, headers, now):
            records.sink(event)

    def on_other(raw: bytes) -> None:
        # The link hands responses and ActionID-carrying events to panoramisk's Message.
        Message.from_line(raw.decode("utf-8", "replace").strip())

    reader = MessageReader(on_event=on_event, on_other=on_other)
    for chunk in chunks:
        now = datetime.now(UTC)
        reader.feed(chunk)


def bare_in_process(chunks: Sequence[bytes], factory: CountingFactory) -> None:
    protocol = CountedProtocol(factory)
    protocol.connection_made(None)
    for chunk in chunks:
        protocol.data_received(chunk)


async def in_process(stream: bytes, messages: int, calls: int, rounds: int) -> Throughput:
    chunks = [stream[offset : offset + CHUNK] for offset in range(0, len(stream), CHUNK)]
    measured = Rates("adapter", messages)
    baseline = Rates("panoramisk", messages)
    wrong: list[str] = []

    async def adapter() -> Span:
        records = CallRecords(calls)
        start = Span.now()
        adapter_in_process(chunks, records)
        elapsed = Span.since(start)
        wrong.extend(records.problems())
        return elapsed

    async def bare() -> Span:
        factory = CountingFactory(messages)
        start = Span.now()
        bare_in_process(chunks, factory)
        elapsed = Span.since(start)
        if factory.events != messages:
            wrong.append(f"panoramisk read {factory.events} of {messages} messages")
        return elapsed

    await alternate(rounds, (measured, adapter), (baseline, bare))
    return Throughput("in process", measured, baseline, tuple(dict.fromkeys(wrong)))


async def alternate(rounds: int, one: tuple[Rates, Run], other: tuple[Rates, Run]) -> None:
    """Run both sides ``rounds`` times, A/B then B/A, so machine noise hits both alike."""
    for turn in range(rounds):
        for rates, run in (one, other) if turn % 2 == 0 else (other, one):
            await rates.time(run)


# --- 2. over TCP loopback ----------------------------------------------------------------------


def serve(copies: int, control: Connection) -> None:
    """The child process: play the scaled stream to every login until told to stop."""
    asyncio.run(_serve(copies, control))


async def _serve(copies: int, control: Connection) -> None:
    stream = scale_burst(load_recording(FIXTURES, RECORDING), copies)
    server = AmiReplayServer(username=USERNAME, secret=SECRET)
    server.script = [Playback(data=stream)] * PLAYBACKS
    await server.start()
    control.send(server.port)
    await asyncio.to_thread(control.recv)
    await server.close()


def bench_channel(port: int) -> AmiChannel:
    return AmiChannel(name="bench", settings=PBX.model_copy(update={"port": port}), region=REGION)


def time_limit(messages: int) -> float:
    return 10 + messages / SLOWEST_EVENTS_PER_S


async def adapter_over_tcp(port: int, messages: int, records: CallRecords) -> Span:
    """A real AmiChannel from connect to every call ended and every event through the tracker."""
    channel = bench_channel(port)
    records.all_ended = asyncio.Event()
    start = Span.now()
    await channel.start(records.sink)
    try:
        await asyncio.wait_for(records.all_ended.wait(), time_limit(messages))
        await channel.drained()
        elapsed = Span.since(start)
    finally:
        await channel.stop()
    health = channel.health()
    if health.detail["dropped_events"] or health.detail["malformed_messages"]:
        raise RuntimeError(f"the adapter lost events: {health.detail}")
    return elapsed


async def bare_over_tcp(port: int, messages: int, factory: CountingFactory) -> Span:
    """panoramisk's protocol logs in and counts every message until the last one."""
    loop = asyncio.get_running_loop()
    factory.all_read = asyncio.Event()
    start = Span.now()
    transport, protocol = await loop.create_connection(
        lambda: CountedProtocol(factory), "127.0.0.1", port
    )
    try:
        login = {"Action": "Login", "Username": USERNAME, "Secret": SECRET, "Events": "on"}
        response = await asyncio.wait_for(protocol.send(login), 10)
        if not response.success:
            raise RuntimeError(f"the replay server refused the login: {response}")
        await asyncio.wait_for(factory.all_read.wait(), time_limit(messages))
        return Span.since(start)
    finally:
        transport.close()


async def over_tcp(port: int, messages: int, calls: int, rounds: int) -> Throughput:
    measured = Rates("adapter", messages)
    baseline = Rates("panoramisk", messages)
    wrong: list[str] = []

    async def adapter() -> Span:
        records = CallRecords(calls)
        elapsed = await adapter_over_tcp(port, messages, records)
        wrong.extend(records.problems())
        return elapsed

    async def bare() -> Span:
        factory = CountingFactory(messages)
        elapsed = await bare_over_tcp(port, messages, factory)
        if factory.events != messages:
            wrong.append(f"panoramisk read {factory.events} of {messages} messages")
        return elapsed

    try:
        await alternate(rounds, (measured, adapter), (baseline, bare))
    except (TimeoutError, OSError, RuntimeError) as exc:
        wrong.append(f"{type(exc).__name__}: {exc}")
    return Throughput("TCP loopback", measured, baseline, tuple(dict.fromkeys(wrong)))


# --- 3. the whole hub ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubRun:
    """One run of the whole hub over a stream, until its calls are stored as ended."""

    messages: int
    calls: int
    stored: int
    elapsed: Span

    @property
    def events_per_s(self) -> float:
        return self.messages / self.elapsed.wall if self.elapsed.wall else 0.0

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.elapsed.wall if self.elapsed.wall else 0.0

    def wrong(self) -> list[str]:
        return [] if self.stored == self.calls else [f"only {self.stored} of {self.calls} stored"]

    def line(self) -> str:
        verdict = "".join(f"  !! {problem}" for problem in self.wrong())
        return (
            f"{'hub → SQLite':<14} n=1  {self.events_per_s:>9,.0f} ev/s, "
            f"{self.calls_per_s:>7,.0f} calls/s ({self.elapsed.wall:.2f} s, "
            f"cpu {self.elapsed.cpu / self.elapsed.wall:4.0%} with the database thread), "
            f"no target{verdict}"
        )


def fresh_database(database: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    DATA_DIR.mkdir(parents=True, exist_ok=True)


def hub_settings(database: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{database}",
        data_dir=DATA_DIR / "ami_ingest-var",
        phone_region=REGION,
        redis_url="",
        listen=False,
        _env_file=None,
    )


async def through_hub(port: int, messages: int, calls: int, database: Path) -> HubRun:
    """The hub as ``commhub serve`` runs it, on a fresh SQLite file, until all calls are stored.

    Timed until every call is stored as ended; then, untimed, until the tracker has
    forgotten every call (late CDRs applied), so the file holds the finished record.
    """
    fresh_database(database)
    channel = bench_channel(port)
    hub = await open_hub(hub_settings(database), channels=[channel])
    try:
        gc.collect()
        start = Span.now()
        await hub.listen()
        deadline = start.wall + time_limit(messages)
        stored = await until_ended(hub, channel, calls, deadline)
        elapsed = Span.since(start)
        await until_ended(hub, channel, calls, deadline, forgotten=True)
    finally:
        await hub.close()
    return HubRun(messages, calls, stored, elapsed)


async def until_ended(
    hub: Hub, channel: AmiChannel, calls: int, deadline: float, *, forgotten: bool = False
) -> int:
    """Poll until ``calls`` calls are stored as ended (``forgotten``: and the tracker
    follows none); returns how many are."""
    ended = 0
    while (ended < calls or (forgotten and channel.tracker.active_calls)) and (
        time.perf_counter() < deadline
    ):
        await asyncio.sleep(0.02)
        await channel.drained()
        await hub.inbound.drained()
        async with hub.sessions() as session:
            query = select(func.count()).where(Interaction.ended_at.is_not(None))
            ended = await session.scalar(query) or 0
    return ended


# --- 4. a restart with calls up --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallsUpStream:
    """The scaled burst cut where every call is answered and talking, none hung up yet."""

    whole: bytes
    up: bytes
    """Up to the last ``BridgeEnter``: what the hub reads before it crashes."""
    rest: Chunks
    """The rest, each read at its time in the recording (seconds after its first event):
    the PBX sends it that long after the first hub's login, so the calls end when they
    ended, however fast the hub came back."""
    calls: int

    @property
    def messages(self) -> int:
        return self.whole.count(END)


def calls_up_stream(copies: int) -> CallsUpStream:
    """``scale_burst`` of the recording, cut after the last ``BridgeEnter``."""
    recording = load_recording(FIXTURES, RECORDING)
    events = [b for b in split_blocks(recording.body) if b.startswith(b"Event: ")]
    times = event_times(recording)
    if len(times) != len(events):
        raise RuntimeError(f"{RECORDING}: {len(times)} timed events for {len(events)} events")
    cut = 1 + max(i for i, b in enumerate(events) if b.startswith(b"Event: BridgeEnter\r\n"))
    if any(b.startswith(b"Event: Hangup\r\n") for b in events[:cut]):
        raise RuntimeError(f"{RECORDING}: a call hangs up before the last one is bridged")
    whole = scale_burst(recording, copies)
    # scale_burst interleaves message by message: the recording's message i is blocks
    # [i * copies, (i + 1) * copies) of the scaled stream.
    blocks = split_blocks(whole)
    rest: dict[float, bytes] = {}
    for i in range(cut, len(events)):
        at = times[i] - times[0]
        rest[at] = rest.get(at, b"") + b"".join(blocks[i * copies : (i + 1) * copies])
    return CallsUpStream(
        whole=whole,
        up=b"".join(blocks[: cut * copies]),
        rest=tuple(rest.items()),
        calls=CALLS_PER_COPY * copies,
    )


def event_times(recording: Recording) -> list[float]:
    """When each ``Event`` message of the recording was read, seconds after the first body byte."""
    times: list[float] = []
    pending = b""
    for at, data in recording.paced_body():
        blocks = (pending + data).split(END)
        pending = blocks.pop()
        times += [at for b in blocks if b.strip(b"\r\n") and b.startswith(b"Event: ")]
    return times


def fault_free_first(turn: int) -> bool:
    """Which goes first in round ``turn``: the peer's script and the run agree on it."""
    return turn % 2 == 0


def serve_restarts(copies: int, rounds: int, control: Connection) -> None:
    """The child process: the PBX of the restart rounds, which plays the rest when told
    how long ago the first hub logged in."""
    asyncio.run(_serve_restarts(copies, rounds, control))


async def _serve_restarts(copies: int, rounds: int, control: Connection) -> None:
    stream = calls_up_stream(copies)
    server = AmiReplayServer(username=USERNAME, secret=SECRET)
    for turn in range(rounds):
        fault_free = [Playback(data=stream.whole)]
        # The second login (the restarted hub) gets no playback: it asks CoreShowChannels,
        # answered from what the PBX sent so far (ChannelsUp), and the rest comes when told.
        restart = [Playback(data=stream.up), Playback()]
        server.script += fault_free + restart if fault_free_first(turn) else restart + fault_free
    await server.start()
    control.send(server.port)
    while isinstance(since := await asyncio.to_thread(control.recv), float):
        rest = tuple((max(0.0, at - since), data) for at, data in stream.rest)
        await server.play(Playback(chunks=rest))
        control.send("sent")
    await server.close()


def crash_phase(port: int, calls: int, control: Connection) -> None:
    """The first hub, in a process of its own, killed once its calls are stored up."""
    logging.basicConfig(level=logging.ERROR, format="  %(levelname)s %(name)s: %(message)s")
    asyncio.run(_crash_phase(port, calls, control))


async def _crash_phase(port: int, calls: int, control: Connection) -> None:
    channel = bench_channel(port)
    hub = await open_hub(hub_settings(RESTART_DATABASE), channels=[channel])
    await hub.listen()
    deadline = time.monotonic() + CALLS_UP_TIMEOUT_S
    up = 0
    while up < calls and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        await channel.drained()
        await hub.inbound.drained()
        async with hub.sessions() as session:
            up = await session.scalar(calls_up_query()) or 0
    since = channel.connected_since
    control.send(since.timestamp() if up == calls and since is not None else None)
    # SIGKILL comes here: nothing is flushed, closed or logged off.
    await asyncio.sleep(CALLS_UP_TIMEOUT_S)


def calls_up_query() -> Select[int]:
    return select(func.count()).where(
        Interaction.ended_at.is_(None), Interaction.status == Status.ANSWERED.value
    )


async def crash(port: int, calls: int) -> float:
    """Run the first hub until the database holds every call up, then kill it.

    Returns the wall time of its login to the PBX, where the calls' timeline starts.
    """
    spawn = multiprocessing.get_context("spawn")
    control, child_end = spawn.Pipe()
    process = spawn.Process(target=crash_phase, args=(port, calls, child_end), name="hub")
    process.start()
    try:
        if not await asyncio.to_thread(control.poll, CALLS_UP_TIMEOUT_S + 30):
            raise RuntimeError("the first hub did not store the calls up in time")
        logged_in: float | None = control.recv()
        if logged_in is None:
            raise RuntimeError(f"the first hub did not store {calls} answered calls up")
        return logged_in
    finally:
        process.kill()
        await asyncio.to_thread(process.join, 10)


@dataclass(frozen=True, slots=True)
class Reconcile:
    """One restart: how long the new hub took to take over the calls up, and what it stored."""

    from_login: float
    """Seconds from the new link's login to every call adopted and its adoption written."""
    from_open: float
    """The same from the call of ``open_hub`` (engine, migrations check, connect, login too)."""
    to_login: float
    """Seconds from the call of ``open_hub`` to the link's login."""
    listed: float
    """Seconds from the login to every call adopted by the tracker (the channel list read)."""
    wrong: tuple[str, ...]


def call_record(row: Interaction) -> dict[str, object]:
    """What must not differ from the fault-free run: the outcome, who talked and how long."""
    extra = row.extra or {}
    return {
        "status": row.status,
        "ended": row.ended_at is not None,
        "duration_s": row.duration_s,
        "operator_talk": extra.get("operator_talk"),
        "operators": extra.get("operators"),
        "operator_id": row.operator_id,
        "from": row.from_address,
        "to": row.to_address,
        "recording": row.recording_ref,
        "ended_unseen": "approximate_end_s" in extra,
    }


def check_up(rows: Sequence[Interaction], calls: int, when: str) -> list[str]:
    """Every call stored once, open and answered."""
    found = []
    ids = {row.external_id for row in rows}
    if len(rows) != calls or len(ids) != calls:
        found.append(f"{when}: {len(rows)} rows for {len(ids)} calls, {calls} expected")
    closed = [row for row in rows if row.ended_at is not None]
    if closed:
        found.append(f"{when}: {len(closed)} calls closed, e.g. {call_record(closed[0])}")
    unanswered = [row for row in rows if row.status != Status.ANSWERED.value]
    if unanswered:
        found.append(f"{when}: {len(unanswered)} calls not answered ({unanswered[0].status})")
    return found


def check_ended(
    rows: Sequence[Interaction], reference: Mapping[str, Interaction], when: str
) -> list[str]:
    """Every call ended once, as in the fault-free run (its total to the second)."""
    found = []
    ids = {row.external_id for row in rows}
    if len(rows) != len(reference) or ids != reference.keys():
        found.append(f"{when}: {len(rows)} rows for {len(ids)} calls, {len(reference)} expected")
    differ = [
        row
        for row in rows
        if row.external_id in reference
        and call_record(row) != call_record(reference[row.external_id])
    ]
    if differ:
        got, want = differ[0], reference[differ[0].external_id]
        found.append(
            f"{when}: {len(differ)} calls differ from the first fault-free run, e.g. "
            f"{call_record(got)} against {call_record(want)}"
        )
    totals = [
        row
        for row in rows
        if row.external_id in reference
        and abs(_total(row) - _total(reference[row.external_id])) > 1
    ]
    if totals:
        got, want = totals[0], reference[totals[0].external_id]
        found.append(
            f"{when}: {len(totals)} calls' totals differ by more than 1 s, "
            f"e.g. {_total(got)} s against {_total(want)} s"
        )
    return found


def check_fault_free(rows: Sequence[Interaction]) -> list[str]:
    """The fault-free record is the recording's: answered, four seconds of talk."""
    wrong = [row for row in rows if row.status != Status.ANSWERED.value or row.duration_s != TALK_S]
    if not wrong:
        return []
    return [
        f"fault-free: {len(wrong)} calls not answered for {TALK_S} s, e.g. {call_record(wrong[0])}"
    ]


def _total(row: Interaction) -> int:
    return int((row.extra or {}).get("total_s") or 0)


async def stored_calls(sessions: SessionFactory) -> list[Interaction]:
    async with sessions() as session:
        rows = list((await session.scalars(select(Interaction))).all())
        session.expunge_all()
    return rows


async def stored_in(database: Path) -> list[Interaction]:
    engine = open_engine(f"sqlite+aiosqlite:///{database}")
    try:
        return await stored_calls(session_factory(engine))
    finally:
        await engine.dispose()


async def until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not ready():
        if time.perf_counter() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.001)


async def crash_and_restart(
    control: Connection, port: int, stream: CallsUpStream, reference: Mapping[str, Interaction]
) -> Reconcile:
    """Crash a hub with every call up, restart it on the same database, time the takeover."""
    calls = stream.calls
    fresh_database(RESTART_DATABASE)
    first_login = await crash(port, calls)
    wrong = check_up(await stored_in(RESTART_DATABASE), calls, "after the crash")
    channel = bench_channel(port)
    gc.collect()
    opening = time.perf_counter()
    hub = await open_hub(hub_settings(RESTART_DATABASE), channels=[channel])
    try:
        await hub.listen()

        # The link asks CoreShowChannels right after its login; once the list is complete
        # (no request of ours waits) and the tracker has read it, the calls are adopted.
        await until(
            lambda: channel.connected_since is not None and not channel.asked,
            RECONCILE_TIMEOUT_S,
            "the PBX's channel list was not read",
        )
        await channel.drained()
        listed_at = datetime.now(UTC)
        await hub.inbound.drained()
        done, done_at = time.perf_counter(), datetime.now(UTC)
        login = channel.connected_since
        assert login is not None, "the new hub's link is down"
        from_login = (done_at - login).total_seconds()
        result = Reconcile(
            from_login=from_login,
            from_open=done - opening,
            to_login=done - opening - from_login,
            listed=(listed_at - login).total_seconds(),
            wrong=(),
        )
        adopted = sum(call.adopted for call in channel.tracker.calls.values())
        if adopted != calls:
            wrong.append(f"after the restart: {adopted} of {calls} calls adopted")
        wrong += check_up(await stored_calls(hub.sessions), calls, "after the restart")
        wrong += await play_rest(control, hub, channel, first_login, calls)
        wrong += check_ended(await stored_calls(hub.sessions), reference, "after the rest")
        health = channel.health().detail
        if health["dropped_events"] or health["malformed_messages"]:
            wrong.append(f"the restarted hub lost events: {health}")
    finally:
        await hub.close()
    return replace(result, wrong=tuple(wrong))


async def play_rest(
    control: Connection, hub: Hub, channel: AmiChannel, first_login: float, calls: int
) -> list[str]:
    """The PBX plays the rest on the calls' timeline (from the first hub's login); wait
    until every call is stored as ended."""
    control.send(time.time() - first_login)
    await asyncio.to_thread(control.recv)
    deadline = time.perf_counter() + CALLS_UP_TIMEOUT_S
    ended = await until_ended(hub, channel, calls, deadline, forgotten=True)
    if ended < calls or channel.tracker.active_calls:
        followed = channel.tracker.active_calls
        return [f"after the rest: {ended} of {calls} calls ended, {followed} still followed"]
    return []


@dataclass(slots=True)
class RestartResult:
    """The restarts beside the fault-free path of the same calls, with the target."""

    calls: int
    restarts: list[Reconcile]
    fault_free: list[HubRun]
    wrong: list[str]

    @property
    def reconcile_s(self) -> float:
        return statistics.median(r.from_login for r in self.restarts) if self.restarts else 0.0

    @property
    def fault_free_s(self) -> float:
        return (
            statistics.median(r.elapsed.wall for r in self.fault_free) if self.fault_free else 0.0
        )

    @property
    def ratio(self) -> float:
        """Calls/s taken over after a restart against calls/s through their whole life."""
        return self.fault_free_s / self.reconcile_s if self.reconcile_s else 0.0

    def met(self) -> bool:
        return (
            not self.wrong
            and bool(self.restarts)
            and all(not r.wrong for r in self.restarts)
            and self.reconcile_s <= TARGET_RECONCILE_S
        )

    def lines(self) -> list[str]:
        verdict = "PASS" if self.met() else "FAIL"
        worst = max((r.from_login for r in self.restarts), default=0.0)
        from_open = statistics.median(r.from_open for r in self.restarts) if self.restarts else 0
        events = (
            statistics.median(r.events_per_s for r in self.fault_free) if self.fault_free else 0
        )
        lines = [
            f"{'restart':<14} n={len(self.restarts)}  {self.calls} calls up reconciled in "
            f"{self.reconcile_s:.3f} s median from the new link's login, worst {worst:.3f} s "
            f"({self.calls / self.reconcile_s if self.reconcile_s else 0:,.0f} calls/s; "
            f"{from_open:.3f} s from calling open_hub) | fault-free through the hub: "
            f"{self.fault_free_s:.3f} s, {events:,.0f} ev/s, "
            f"{self.calls / self.fault_free_s if self.fault_free_s else 0:,.0f} calls/s | "
            f"ratio {self.ratio:4.2f}x | target <= {TARGET_RECONCILE_S:g} s: {verdict}"
        ]
        for turn, r in enumerate(self.restarts):
            lines.append(
                f"    round {turn + 1}: open_hub → login {r.to_login:.3f} s, login → list adopted "
                f"{r.listed:.3f} s, → written {r.from_login:.3f} s"
            )
        return lines


async def restarts(copies: int, rounds: int) -> RestartResult:
    """Rounds of (the fault-free hub, a crash and a restart) on the same calls, alternated."""
    stream = calls_up_stream(copies)
    spawn = multiprocessing.get_context("spawn")
    control, child_end = spawn.Pipe()
    peer = spawn.Process(target=serve_restarts, args=(copies, rounds, child_end), name="pbx")
    peer.start()
    result = RestartResult(stream.calls, [], [], [])
    try:
        if not await asyncio.to_thread(control.poll, 60):
            raise RuntimeError("the restart peer did not start")
        port: int = control.recv()
        reference: dict[str, Interaction] = {}
        for turn in range(rounds):
            for fault_free in (True, False) if fault_free_first(turn) else (False, True):
                if not fault_free:
                    result.restarts.append(
                        await crash_and_restart(control, port, stream, reference)
                    )
                    continue
                run = await through_hub(port, stream.messages, stream.calls, FAULT_FREE_DATABASE)
                result.fault_free.append(run)
                rows = await stored_in(FAULT_FREE_DATABASE)
                result.wrong += run.wrong() + check_fault_free(rows)
                if reference:
                    result.wrong += check_ended(rows, reference, "fault-free")
                else:  # round 1 runs it first: the record every later run must equal
                    reference = {row.external_id: row for row in rows}
    except (TimeoutError, OSError, RuntimeError) as exc:
        result.wrong.append(f"{type(exc).__name__}: {exc}")
    finally:
        control.send("stop")
        peer.join(10)
        if peer.is_alive():
            peer.terminate()
    result.wrong = list(dict.fromkeys(result.wrong))
    return result


# --- the run -------------------------------------------------------------------------------------


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=200, help="ten calls per copy")
    parser.add_argument("--rounds", type=int, default=5, help="in-process runs of each side")
    parser.add_argument("--tcp-rounds", type=int, default=3, help="TCP runs of each side")
    parser.add_argument(
        "--restart-rounds", type=int, default=3, help="hub restarts with 200 calls up (0: none)"
    )
    parser.add_argument(
        "--no-hub", action="store_true", help="skip the runs through the hub (and the restarts)"
    )
    args = parser.parse_args()
    load_before = " ".join(f"{value:.2f}" for value in os.getloadavg())
    # Stopping a channel logs "link lost"; lost or malformed events are checked in health().
    logging.basicConfig(level=logging.ERROR, format="  %(levelname)s %(name)s: %(message)s")

    spawn = multiprocessing.get_context("spawn")
    control, child_end = spawn.Pipe()
    server = spawn.Process(target=serve, args=(args.copies, child_end), name="ami replay")
    server.start()
    try:
        stream = scale_burst(load_recording(FIXTURES, RECORDING), args.copies)
        messages = stream.count(END)
        calls = CALLS_PER_COPY * args.copies
        print(
            f"{RECORDING} x {args.copies}: {calls:,} calls, {messages:,} AMI messages, "
            f"{len(stream) / 1e6:.1f} MB; in process in {CHUNK // 1024} KiB chunks, "
            f"replay server in a child process"
        )
        if not control.poll(60):
            raise RuntimeError("the replay server did not start")
        port: int = control.recv()
        results = [await in_process(stream, messages, calls, args.rounds)]
        results.append(await over_tcp(port, messages, calls, args.tcp_rounds))
        hub = None if args.no_hub else await through_hub(port, messages, calls, HUB_DATABASE)
    finally:
        control.send("stop")
        server.join(10)
        if server.is_alive():
            server.terminate()
    restart = None
    if not args.no_hub and args.restart_rounds > 0:
        restart = await restarts(RESTART_COPIES, args.restart_rounds)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"  machine load average (1/5/15 min) before the run: {load_before}, after: {load}")
    for result in results:
        print(f"  {result.line()}")
        for problem in result.wrong:
            print(f"    !! {problem}")
    if hub is not None:
        print(f"  {hub.line()}")
    if restart is not None:
        for line in restart.lines():
            print(f"  {line}")
        for problem in restart.wrong + [p for r in restart.restarts for p in r.wrong]:
            print(f"    !! {problem}")
    met = all(result.met() for result in results) and (restart is None or restart.met())
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
