"""Benchmark: a burst of thousands of concurrent calls read off the AMI into call records.

    .venv/bin/python bench/ami_ingest/run.py [--copies 200] [--rounds 5] [--tcp-rounds 3] [--no-hub]

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
   ``bench/data/``, until every call is stored as ended.

Both sides count the same AMI messages, so events/s compare directly.
Target, for 1 and 2: >= 10,000 events/s on one core and >= 80 % of the bare
parse rate. Exits non-zero when a target is missed or a side's output is wrong.
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message
from sqlalchemy import func, select

from commhub.bootstrap import open_hub
from commhub.channels import CallOffered, CallUpdated, InboundEvent
from commhub.config import Settings
from commhub.domain.interactions import Status
from commhub.store.schema import Interaction
from commhub_asterisk import AmiChannel
from commhub_asterisk.config import PbxSettings
from commhub_asterisk.dialplan import Dialplan
from commhub_asterisk.recordings import load_recording, scale_burst
from commhub_asterisk.replay import AmiReplayServer, Playback
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


async def through_hub(port: int, messages: int, calls: int) -> str:
    """The hub as ``commhub serve`` runs it, on a fresh SQLite file, until all calls are stored."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{HUB_DATABASE}{suffix}").unlink(missing_ok=True)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{HUB_DATABASE}",
        data_dir=DATA_DIR / "ami_ingest-var",
        phone_region=REGION,
        redis_url="",
        listen=False,
        _env_file=None,
    )
    channel = bench_channel(port)
    hub = await open_hub(settings, channels=[channel])
    stored = 0
    try:
        gc.collect()
        start = Span.now()
        await hub.listen()
        deadline = start.wall + time_limit(messages)
        while stored < calls and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
            await channel.drained()
            await hub.inbound.drained()
            async with hub.sessions() as session:
                query = select(func.count()).where(Interaction.ended_at.is_not(None))
                stored = await session.scalar(query) or 0
        elapsed = Span.since(start)
    finally:
        await hub.close()
    verdict = "" if stored == calls else f"  !! only {stored} of {calls} calls stored"
    return (
        f"{'hub → SQLite':<14} n=1  {messages / elapsed.wall:>9,.0f} ev/s, "
        f"{calls / elapsed.wall:>7,.0f} calls/s ({elapsed.wall:.2f} s, "
        f"cpu {elapsed.cpu / elapsed.wall:4.0%} with the database thread), "
        f"no target{verdict}"
    )


# --- the run -------------------------------------------------------------------------------------


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=200, help="ten calls per copy")
    parser.add_argument("--rounds", type=int, default=5, help="in-process runs of each side")
    parser.add_argument("--tcp-rounds", type=int, default=3, help="TCP runs of each side")
    parser.add_argument("--no-hub", action="store_true", help="skip the run through the hub")
    args = parser.parse_args()
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
        hub = None if args.no_hub else await through_hub(port, messages, calls)
    finally:
        control.send("stop")
        server.join(10)
        if server.is_alive():
            server.terminate()
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"  machine load average (1/5/15 min) after the run: {load}")
    for result in results:
        print(f"  {result.line()}")
        for problem in result.wrong:
            print(f"    !! {problem}")
    if hub is not None:
        print(f"  {hub}")
    return 0 if all(result.met() for result in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
