"""Benchmark: screen pop, from a ringing call's AMI bytes to the frame on the operator's WebSocket.

    .venv/bin/python bench/screen_pop/run.py [--backend sqlite|postgres|both]
        [--contacts N] [--rows N] [--calls N]

The hub runs as in production on 1M contacts and 10M interactions: its aiohttp
server on loopback, the Asterisk adapter's AMI link to a loopback AMI server
(``ami_replay``), the inbound path and the live feed. For
each call the AMI server sends the recorded inbound call up to and including
the ``DialBegin`` that rings extension 201; the clock runs from just before
those bytes are written to the socket until a WebSocket client logged in as
that operator has the ``call.offered`` frame. Beside it, interleaved call by
call, the raw identify SELECT for the same number. Target: p99 <= 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import logging
import pstats
import random
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parents[2] / "tests"))  # the AMI replay peer
# bench/identify's modules import each other flatly; last, so that `load` stays this folder's.
sys.path.append(str(Path(__file__).resolve().parents[1] / "identify"))

import aiohttp
from aiohttp import WSMsgType, web
from load import OPERATOR, CardShape, fill
from phonebook import (
    HOME_REGION,
    non_canonical_forms,
    number_of,
    stored_numbers,
    unknown_numbers,
)
from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from ami_replay import AmiReplayServer
from commhub.bootstrap import Hub, open_hub
from commhub.channels import ChannelContext
from commhub.config import Settings
from commhub.domain.phones import read_number
from commhub.models import ApiToken, User
from commhub.services import live, users
from commhub.store.engine import open_engine
from commhub.store.migrate import upgrade
from commhub.web.app import create_app
from commhub_asterisk import AmiChannel, adapter
from commhub_asterisk.recordings import (
    BRIDGE_ID,
    CHANNEL_SEQUENCE,
    UNIQUEID,
    Recording,
    load_recording,
    split_blocks,
)
from databases import BACKENDS, BenchDatabase, bench_database, drop, is_built, mark_built, recreate
from latency import Comparison, Samples, report

TARGET_P99_MS: Final = 10.0
WARMUP: Final = 200
UNKNOWN_SHARE: Final = 0.1
FRAME_TIMEOUT_S: Final = 10.0

AMI_FIXTURES: Final = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "ami"
RECORDING: Final = "inbound_answered_e164_with_name"
RECORDED_NUMBER: Final = b"+79035550101"
"""The caller in the recording; each benchmark call puts its own number in its place."""
OPERATOR_DIAL: Final = b"\r\nDestChannel: Local/201@operators-"
"""The DialBegin that rings the operator's phone: the moment the screen pop is for."""
LINKEDID: Final = re.compile(rb"\r\nLinkedid: (\S+)")
PBX: Final = "main"
AMI_USER: Final = "commhub"
AMI_SECRET: Final = "bench-secret"

RAW_BY_MATCH_KEY = text(
    "SELECT contact_id, value FROM contact_points WHERE kind = 'phone' AND match_key = :key"
).bindparams(bindparam("key"))
"""identify's one indexed query, without the service around it (as in bench/identify)."""
RAW_CARD = text(
    "SELECT id FROM interactions WHERE contact_id = :contact "
    "ORDER BY occurred_at DESC, id DESC LIMIT 5"
)
RAW_CONTACT = text("SELECT * FROM contacts WHERE id = :contact")


# --- the callers and their calls --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    """A number as the trunk presents it, and a contact holding it (``None``: nobody)."""

    number: str
    match_key: str
    contact_id: int | None


def trunk_digits(written: str) -> str:
    """A number as a trunk's caller id carries it: digits, with a leading ``+`` if there was one."""
    digits = "".join(ch for ch in written if ch.isdigit())
    return f"+{digits}" if written.lstrip().startswith("+") else digits


async def known_callers(
    connection: AsyncConnection, count: int, rng: random.Random
) -> list[Caller]:
    """Stored numbers picked at random, each written as a Russian trunk presents it.

    8…, 810…, 00…, +… and, for a foreign number, without its country code;
    every form is checked to read back to the stored number's match key.
    """
    rows = await stored_numbers(connection, count, rng)
    callers = []
    for e164, key, contact_id in rows:
        forms = [w for w, region in non_canonical_forms(number_of(e164)) if region == HOME_REGION]
        number = trunk_digits(rng.choice(forms))
        if read_number(number, HOME_REGION).match_key != key:
            raise AssertionError(f"{number!r} on a {HOME_REGION} trunk is not {e164}")
        callers.append(Caller(number, key, contact_id))
    rng.shuffle(callers)
    return callers


async def unknown_callers(
    connection: AsyncConnection, count: int, rng: random.Random
) -> list[Caller]:
    """Valid numbers no contact has, in trunk form."""
    callers: list[Caller] = []
    while len(callers) < count:
        for candidate in await unknown_numbers(connection, count - len(callers), rng):
            forms = [w for w, region in non_canonical_forms(candidate) if region == HOME_REGION]
            number = trunk_digits(rng.choice(forms))
            if read_number(number, HOME_REGION).match_key == candidate.phone.match_key:
                callers.append(Caller(number, candidate.phone.match_key, None))
    return callers


@dataclass(frozen=True, slots=True)
class CallBytes:
    """One call's AMI stream: until the operator's phone rings, and the rest of it."""

    call_id: str
    """The call's id on the live feed: the PBX's name and the call's Linkedid."""
    ringing: bytes
    rest: bytes


class RecordedCall:
    """The recorded inbound call, cut after the DialBegin to the operator, copied with new ids.

    Each copy gets Uniqueids/Linkedid, channel counters and bridge ids of its
    own (as the next call on a real PBX would) and its caller's number.
    The ``OriginateResponse`` is left out: it answers the action that made the
    recorded call, and a real inbound call has none.
    """

    def __init__(self, recording: Recording) -> None:
        blocks = [
            block
            for block in split_blocks(recording.body)
            if block.startswith(b"Event: ") and not block.startswith(b"Event: OriginateResponse")
        ]
        ring = next(
            i
            for i, block in enumerate(blocks)
            if block.startswith(b"Event: DialBegin") and OPERATOR_DIAL in block
        )
        self.ringing = b"".join(blocks[: ring + 1])
        self.rest = b"".join(blocks[ring + 1 :])
        body = self.ringing + self.rest
        self._ids = list(dict.fromkeys(m[0] for m in UNIQUEID.finditer(body)))
        self._sequences = list(dict.fromkeys(m[2] for m in CHANNEL_SEQUENCE.finditer(body)))
        found = LINKEDID.search(body)
        assert found is not None, "the recording names no Linkedid"
        self._linkedid = found[1]
        self._epoch = int(time.time())

    def copy(self, serial: int, number: str) -> CallBytes:
        """Call number ``serial`` of this run, from ``number``."""
        ids = {
            old: f"{self._epoch}.{serial * len(self._ids) + i}".encode()
            for i, old in enumerate(self._ids)
        }
        sequences = {
            old: f"{serial * len(self._sequences) + i:08x}".encode()
            for i, old in enumerate(self._sequences)
        }

        def renumber(data: bytes) -> bytes:
            data = UNIQUEID.sub(lambda m: ids[m[0]], data)
            data = BRIDGE_ID.sub(lambda m: f"{serial:08x}".encode() + m[1], data)
            data = CHANNEL_SEQUENCE.sub(lambda m: m[1] + b"-" + sequences[m[2]], data)
            return data.replace(RECORDED_NUMBER, number.encode())

        return CallBytes(
            call_id=f"{PBX}:{ids[self._linkedid].decode()}",
            ringing=renumber(self.ringing),
            rest=renumber(self.rest),
        )


# --- the hub, its PBX and the operator's WebSocket ----------------------------------------------


@dataclass
class OperatorDesk:
    """The running hub as one operator sees it: the PBX to ring their phone, their live feed."""

    hub: Hub
    pbx: AmiReplayServer
    channel: AmiChannel
    feed: aiohttp.ClientWebSocketResponse
    ended: set[str] = field(default_factory=set)

    async def ring(self, call: CallBytes) -> tuple[int, dict[str, Any]]:
        """Send the call up to its DialBegin; nanoseconds until its screen pop, and the pop."""
        start = time.perf_counter_ns()
        await self.pbx.send(call.ringing)
        while True:
            message = await self.feed.receive(timeout=FRAME_TIMEOUT_S)
            arrived = time.perf_counter_ns()
            frame = self._read(message)
            if frame["type"] == live.CALL_OFFERED and frame["data"]["call"]["id"] == call.call_id:
                return arrived - start, frame["data"]

    async def hang_up(self, call: CallBytes) -> None:
        """Send the rest of the call and wait until the hub has logged its end."""
        await self.pbx.send(call.rest)
        while call.call_id not in self.ended:
            self._read(await self.feed.receive(timeout=FRAME_TIMEOUT_S))
        self.ended.discard(call.call_id)
        await self.channel.drained()
        await self.hub.inbound.drained()

    def _read(self, message: aiohttp.WSMessage) -> dict[str, Any]:
        if message.type is not WSMsgType.TEXT:
            raise RuntimeError(f"the live feed ended: {message.type.name} {message.extra or ''}")
        frame: dict[str, Any] = json.loads(message.data)
        if frame["type"] == live.CALL_UPDATED and frame["data"]["call"]["ended_at"]:
            self.ended.add(frame["data"]["call"]["id"])
        return frame


@contextlib.asynccontextmanager
async def operator_desk(database: BenchDatabase) -> AsyncIterator[OperatorDesk]:
    """Start the PBX, the hub's web server with its AMI link, and the operator's WebSocket."""
    pbx = AmiReplayServer(username=AMI_USER, secret=AMI_SECRET)
    await pbx.start()
    channel = adapter(
        name=PBX,
        options={
            "host": pbx.host,
            "port": pbx.port,
            "username": AMI_USER,
            "secret": AMI_SECRET,
            "trunk_contexts": ["from-trunk"],
            "operator_contexts": ["operators", "operators-noanswer", "from-internal"],
            "region": HOME_REGION,
        },
        context=ChannelContext(phone_region=HOME_REGION),
    )
    opened: list[Hub] = []
    with tempfile.TemporaryDirectory(prefix="screen-pop-") as data_dir:
        settings = Settings(
            database_url=database.url,
            data_dir=Path(data_dir),
            phone_region=HOME_REGION,
            redis_url="",
            _env_file=None,
        )

        async def opener() -> Hub:
            opened.append(await open_hub(settings, channels=[channel]))
            return opened[-1]

        runner = web.AppRunner(create_app(opener))
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            hub = opened[0]
            await pbx.wait_logins(1)
            await pbx.wait_for_action("CoreShowChannels")
            await channel.drained()
            gc.collect()  # as `commhub serve` does once it has started
            gc.freeze()
            async with api_token(hub) as token, aiohttp.ClientSession() as client:
                url = f"http://{host}:{port}/api/v1/live"
                auth = {"Authorization": f"Bearer {token}"}
                async with client.ws_connect(url, headers=auth) as ws:
                    hello = await ws.receive_json(timeout=FRAME_TIMEOUT_S)
                    assert hello["type"] == live.HELLO, hello
                    assert isinstance(channel, AmiChannel)
                    yield OperatorDesk(hub, pbx, channel, ws)
        finally:
            await runner.cleanup()
            await pbx.close()


@contextlib.asynccontextmanager
async def api_token(hub: Hub) -> AsyncIterator[str]:
    """An API token of the operator for this run, deleted afterwards."""
    async with hub.sessions() as session:
        user_id = await session.scalar(select(User.id).where(User.username == OPERATOR))
        assert user_id is not None, f"no user {OPERATOR} in the benchmark database"
        secret, token = await users.issue_token(session, user_id, "bench/screen_pop")
        await session.commit()
    try:
        yield secret
    finally:
        async with hub.sessions() as session:
            await session.delete(await session.get(ApiToken, token.id))
            await session.commit()


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Cases:
    """The timed calls split by what the hub found, each side of each case."""

    pops: dict[str, Samples] = field(default_factory=dict)
    raws: dict[str, Samples] = field(default_factory=dict)
    wrong: int = 0

    def add(self, label: str, pop_ns: int, raw_ns: int) -> None:
        for case in ("all calls", label):
            self.pops.setdefault(case, Samples("screen pop")).durations_ns.append(pop_ns)
            self.raws.setdefault(case, Samples("raw SELECT")).durations_ns.append(raw_ns)

    def comparisons(self) -> list[Comparison]:
        return [
            Comparison(case, self.pops[case], self.raws[case], TARGET_P99_MS) for case in self.pops
        ]


def answered_right(caller: Caller, pop: dict[str, Any], owners: set[int]) -> bool:
    """Whether the pop names who the raw SELECT says is behind the number."""
    if caller.contact_id is None:
        return bool(pop["match"] == "unknown")
    if pop["match"] == "ambiguous":
        return len(owners) > 1
    return pop["match"] == "match" and pop["contact"]["id"] in owners


async def measure(
    desk: OperatorDesk,
    connection: AsyncConnection,
    callers: Sequence[Caller],
    calls: Sequence[CallBytes],
) -> Cases:
    """Each call rung through the hub beside the raw SELECT of its number, alternating the order.

    The raw SELECT runs while the hub is idle (before the call, or after its
    hang-up is logged), so it shares the machine with nothing of ours.
    """
    cases = Cases()
    for turn, (caller, call) in enumerate(zip(callers, calls, strict=True)):
        if turn % 2:
            raw_ns, rows = await raw_select(connection, caller.match_key)
            pop_ns, pop = await desk.ring(call)
            await desk.hang_up(call)
        else:
            pop_ns, pop = await desk.ring(call)
            await desk.hang_up(call)
            raw_ns, rows = await raw_select(connection, caller.match_key)
        cases.wrong += not answered_right(caller, pop, {row.contact_id for row in rows})
        label = "unknown caller" if caller.contact_id is None else "known caller, trunk formats"
        cases.add(label, pop_ns, raw_ns)
    return cases


async def raw_select(connection: AsyncConnection, key: str) -> tuple[int, Sequence[Row[Any]]]:
    start = time.perf_counter_ns()
    rows = (await connection.execute(RAW_BY_MATCH_KEY, {"key": key})).all()
    return time.perf_counter_ns() - start, rows


async def warm(connection: AsyncConnection, callers: Sequence[Caller]) -> None:
    """Touch every page the calls will read once, so the figure is not the disk's."""
    for caller in callers:
        rows = (await connection.execute(RAW_BY_MATCH_KEY, {"key": caller.match_key})).all()
        for row in rows:
            await connection.execute(RAW_CARD, {"contact": row.contact_id})
            await connection.execute(RAW_CONTACT, {"contact": row.contact_id})


async def ensure_loaded(database: BenchDatabase, shape: CardShape, rebuild: bool) -> None:
    built = database.marker.read_text().strip() if is_built(database) else ""
    if built.startswith(f"{shape.contacts} contacts,") and not rebuild:
        print(f"  reusing {database.url} ({built})")
        return
    await recreate(database)
    engine = open_engine(database.url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    summary = await fill(database, shape)
    print(f"  {summary}")
    mark_built(database, summary)


async def draw_calls(
    connection: AsyncConnection, count: int, rng: random.Random
) -> tuple[list[Caller], list[CallBytes]]:
    """``count`` callers, a tenth of them unknown, in random order, and each one's call."""
    unknown = round(count * UNKNOWN_SHARE)
    callers = await known_callers(connection, count - unknown, rng)
    callers += await unknown_callers(connection, unknown, rng)
    rng.shuffle(callers)
    recorded = RecordedCall(load_recording(AMI_FIXTURES, RECORDING))
    return callers, [recorded.copy(n, caller.number) for n, caller in enumerate(callers)]


async def ring_all(
    database: BenchDatabase,
    connection: AsyncConnection,
    callers: Sequence[Caller],
    calls: Sequence[CallBytes],
    profiler: cProfile.Profile | None,
) -> Cases:
    """:data:`WARMUP` calls untimed, then the rest timed; the calls' rows are deleted after."""
    first_new = (
        await connection.execute(text("SELECT coalesce(max(id), 0) FROM interactions"))
    ).scalar_one()
    try:
        async with operator_desk(database) as desk:
            await measure(desk, connection, callers[:WARMUP], calls[:WARMUP])
            if profiler is not None:
                profiler.enable()
            try:
                return await measure(desk, connection, callers[WARMUP:], calls[WARMUP:])
            finally:
                if profiler is not None:
                    profiler.disable()
    finally:
        # So that the next run finds the data as it was built.
        await connection.execute(
            text("DELETE FROM missed_calls WHERE interaction_id > :id"), {"id": first_new}
        )
        await connection.execute(text("DELETE FROM interactions WHERE id > :id"), {"id": first_new})


async def run_backend(backend: str, args: argparse.Namespace) -> list[Comparison]:
    shape = CardShape(rows=args.rows, people=args.contacts)
    database = bench_database("screen_pop", backend, args.rows)
    print(f"[{backend}] {database.url}")
    await ensure_loaded(database, shape, args.rebuild)
    profiler = cProfile.Profile() if args.profile else None
    engine = open_engine(database.url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            callers, calls = await draw_calls(connection, WARMUP + args.calls, random.Random(13))
            await warm(connection, callers)
            cases = await ring_all(database, connection, callers, calls, profiler)
    finally:
        await engine.dispose()
    if args.drop:
        await drop(database)
    if profiler is not None:
        print("  profile of the timed calls (main thread; the timings below are inflated by it):")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)
    if cases.wrong:
        print(f"  !! {cases.wrong} of {args.calls} screen pops disagree with the raw SELECT")
    results = cases.comparisons()
    report(results)
    return results


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=10_000_000, help="interactions")
    parser.add_argument("--calls", type=int, default=5_000, help="timed calls")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the database")
    parser.add_argument("--drop", action="store_true", help="delete the database afterwards")
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of the timed calls"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="  %(levelname)s %(name)s: %(message)s")
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    results = [result for backend in backends for result in await run_backend(backend, args)]
    return 0 if all(result.met() for result in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
