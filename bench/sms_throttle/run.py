"""Benchmark: does each SMS gateway's sender keep the rate it is given?

    .venv/bin/python bench/sms_throttle/run.py [--messages 5000] [--adapters twilio,smpp,kannel]
        [--rates 50,200] [--window N] [--require-kannel]

For every adapter and rate, 5,000 messages go from the hub's outbox to the
adapter's loopback peer the way the hub sends them: the real ``Dispatcher``
with the SMS delivery (``services/dispatch.py``: claims queued outbox rows, paces
``gateway.send()`` on an absolute schedule at ``gateway.rate``, up to
``window`` in flight, records each answer) driving the real adapter, built
by its entry point, on a fresh SQLite file whose outbox rows were written by
``queue_sms`` before the clock starts. The peers are the test suite's own:

- twilio: ``tests/twilio_api.py`` (the Messages resource, the SDK aimed at it);
- smpp: ``tests/smsc.py`` (an SMSC speaking SMPP 3.4 on TCP);
- kannel: ``tests/kannel.py`` (real bearerbox and smsbox, fakesmsc as the SMSC).

The rate is measured where the messages land: each one is stamped as the peer
gets it, and the achieved rate is ``(n - 1) / (t_last - t_first)``. Also shown:
how far arrivals strayed from the schedule ``t_first + i / rate``, and the
unthrottled maximum (``rate`` at the adapters' ceiling, same window) beside
the configured rates. Every message must reach the peer exactly once.

Target: the achieved rate within +-2 % of each configured one. Exits 1 when a
target is missed, a message is lost or doubled, or (with ``--require-kannel``)
Kannel is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Final, Protocol

from aiohttp import web
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

import kannel as kannel_peer
from commhub.channels import ChannelContext, ChannelFactory, InboundEvent, SmsGateway
from commhub.models import Outbox
from commhub.services.dispatch import BATCH, Dispatcher
from commhub.services.live import LiveFeed
from commhub.services.sms_dispatch import SmsDelivery
from commhub.services.sms_sending import SmsRequest, queue_sms
from commhub.store.engine import open_engine, session_factory
from commhub.store.migrate import upgrade
from latency import report
from smsc import Smsc, Submitted
from twilio_api import TwilioApi

ADAPTERS: Final = ("twilio", "smpp", "kannel")
TOLERANCE: Final = 0.02
UNTHROTTLED: Final = 10_000.0
"""The highest ``rate`` the three adapters accept; far above what one hub process can send."""
NAME: Final = "bench"
"""Every gateway gets this name, so one queued outbox serves them all."""
OUR_NUMBER: Final = "+15017122661"
REGION: Final = "RU"
NOWHERE: Final = "http://127.0.0.1:9"
"""The public URL the adapters require; delivery reports are off, nothing calls it."""
TEXT: Final = "Bench {number:05d}: your order is ready for pickup at the shop."
TEXT_NUMBER: Final = re.compile(r"Bench (\d+):")
BIND_S: Final = 10.0
GIVE_UP_S: Final = 15.0
"""No message reached the peer for this long: the rest are taken as lost."""
GRACE_S: Final = 0.5
"""After the last answer, how long to keep listening for a message arriving twice."""
PAUSE_MS: Final = 100.0
"""A pause between two arrivals this long is counted (and matched against the claim batches)."""
NUDGE_S: Final = 0.002
"""How often fakesmsc is woken to read what Kannel sent it."""

log = logging.getLogger("bench.sms_throttle")


def recipient(number: int) -> str:
    return f"+7916{number:07d}"


def digits(address: str) -> str:
    return "".join(ch for ch in address if ch.isdigit())


@dataclass(frozen=True, slots=True)
class Arrival:
    """One message as the peer got it: when (``time.monotonic``), for whom, what."""

    at: float
    recipient: str
    text: str

    @property
    def number(self) -> int | None:
        """Which queued message this is, from its text; None for anything the bench did not send."""
        found = TEXT_NUMBER.match(self.text)
        if found is None or digits(recipient(int(found.group(1)))) != digits(self.recipient):
            return None
        return int(found.group(1))


# --- the peers -----------------------------------------------------------------------------------


class Peer(Protocol):
    """A loopback peer of one adapter that stamps every message it takes."""

    adapter: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def options(self, rate: float, window: int | None) -> dict[str, Any]:
        """The adapter's options, as an admin writes them, aimed at this peer."""
        ...

    def arrivals(self) -> list[Arrival]:
        """Every message taken so far, in the order it came."""
        ...

    def describe(self) -> str:
        """What the peer is and where it runs, for the report."""
        ...


class TimedTwilioApi(TwilioApi):
    """The test suite's Twilio Messages API, stamping each message it creates (201)."""

    def __init__(self) -> None:
        super().__init__()
        self.stamped: list[Arrival] = []

    async def _create_message(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        answer = await super()._create_message(request)
        if answer.status == 201:
            # No await since the form was recorded: the last one received is this request's.
            form = self.received[-1].form
            self.stamped.append(Arrival(at, form.get("To", ""), form.get("Body", "")))
        return answer


class TwilioPeer:
    adapter = "twilio"

    def __init__(self) -> None:
        self.api = TimedTwilioApi()

    async def start(self) -> None:
        await self.api.start()

    async def stop(self) -> None:
        await self.api.stop()

    def options(self, rate: float, window: int | None) -> dict[str, Any]:
        return {
            "account_sid": self.api.account_sid,
            "auth_token": self.api.auth_token,
            "numbers": [OUR_NUMBER],
            "api_base_url": self.api.base_url,
            "rate": rate,
        }

    def arrivals(self) -> list[Arrival]:
        return self.api.stamped

    def describe(self) -> str:
        return f"TwilioApi (aiohttp) in this process on {self.api.base_url}"


class TimedSmsc(Smsc):
    """The test suite's SMSC, stamping each submit_sm as it reads it; no delivery receipts."""

    def __init__(self) -> None:
        super().__init__(receipt_delay_s=None)
        self.stamped: list[Arrival] = []

    def _read_submit(self, body: bytes) -> Submitted:
        at = time.monotonic()
        submit = super()._read_submit(body)
        self.stamped.append(Arrival(at, submit.destination[2], submit.text))
        return submit


class SmppPeer:
    adapter = "smpp"

    def __init__(self) -> None:
        self.smsc = TimedSmsc()

    async def start(self) -> None:
        await self.smsc.start()

    async def stop(self) -> None:
        await self.smsc.close()

    def options(self, rate: float, window: int | None) -> dict[str, Any]:
        options: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.smsc.port,
            "system_id": self.smsc.system_id,
            "password": self.smsc.password,
            "numbers": [OUR_NUMBER],
            "rate": rate,
        }
        if window is not None:
            options["window"] = window  # the setting the gateway's window comes from
        return options

    def arrivals(self) -> list[Arrival]:
        return self.smsc.stamped

    def describe(self) -> str:
        return f"tests/smsc.py Smsc (asyncio) in this process on 127.0.0.1:{self.smsc.port}"


class FakesmscWatch(threading.Thread):
    """Stamps each message Kannel hands fakesmsc, reading fakesmsc's output as it grows.

    fakesmsc reads its socket only when its stdin wakes it (or after a 1 s
    select; see ``KannelServer.smsc_received``): this thread wakes it with an
    empty line every ``NUDGE_S``, so a message is printed, and stamped here,
    within about two milliseconds of Kannel writing it (at some 3 % of a core).
    """

    def __init__(self, server: kannel_peer.KannelServer) -> None:
        super().__init__(name="fakesmsc watch", daemon=True)
        self._server = server
        self._output = server.directory / "fakesmsc.out"
        self._done = threading.Event()
        self.stamped: list[Arrival] = []

    def run(self) -> None:
        pending = ""
        with self._output.open(encoding="utf-8", errors="replace") as output:
            while not self._done.is_set():
                self._server._fakesmsc_write("\n")
                chunk = output.read()
                at = time.monotonic()
                pending += chunk
                *lines, pending = pending.split("\n")
                for line in lines:
                    # kannel.py's own reading of the lines Kannel writes to fakesmsc
                    matched = kannel_peer._GOT_MESSAGE.search(line)
                    if matched:
                        message = kannel_peer._read_smsc_line(matched.group(1))
                        self.stamped.append(Arrival(at, message.receiver, message.text))
                self._done.wait(NUDGE_S)

    def stop(self) -> None:
        self._done.set()
        self.join(5)


class KannelPeer:
    adapter = "kannel"

    def __init__(self) -> None:
        self.server = kannel_peer.KannelServer()
        self._watch: FakesmscWatch | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.server.start)
        self._watch = FakesmscWatch(self.server)
        self._watch.start()

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        await asyncio.to_thread(self.server.stop)

    def options(self, rate: float, window: int | None) -> dict[str, Any]:
        return {
            "sendsms_url": self.server.sendsms_url,
            "username": self.server.username,
            "password": self.server.password,
            "numbers": [OUR_NUMBER],
            "callback_secret": "b" * 40,
            "dlr_mask": 0,
            "rate": rate,
        }

    def arrivals(self) -> list[Arrival]:
        return self._watch.stamped if self._watch is not None else []

    def describe(self) -> str:
        return (
            f"Kannel (bearerbox, smsbox: sendsms on {self.server.sendsms_url}) "
            "with fakesmsc as its SMSC, in their own processes"
        )


def make_peer(adapter: str) -> Peer:
    peers: dict[str, Callable[[], Peer]] = {
        "twilio": TwilioPeer,
        "smpp": SmppPeer,
        "kannel": KannelPeer,
    }
    return peers[adapter]()


# --- the outbox --------------------------------------------------------------------------------


async def queue_all(path: Path, gateway: SmsGateway, count: int) -> float:
    """A migrated SQLite file with ``count`` messages queued by ``queue_sms``; seconds it took."""
    started = time.perf_counter()
    engine = open_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        for number in range(count):
            request = SmsRequest(text=TEXT.format(number=number), to=recipient(number))
            async with sessions() as session:
                await queue_sms(session, [gateway], request, user_id=None, region=REGION)
    finally:
        await engine.dispose()  # the last connection checkpoints the WAL into the file
    return time.perf_counter() - started


def copy_database(template: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, target)


# --- one run -------------------------------------------------------------------------------------


def settle_at_once(event: InboundEvent) -> None:
    """The core's sink: nothing is expected (no reports are asked for), but nothing hangs."""
    settled = getattr(event, "settled", None)
    if settled is not None and not settled.done():
        settled.set_result(None)


@dataclass(slots=True)
class Run:
    """One adapter at one rate: what the peer got and what the sender recorded."""

    adapter: str
    rate: float | None
    """The configured rate; None for the unthrottled run."""
    count: int
    window: int
    arrivals: list[Arrival] = field(default_factory=list)
    started_at: float = 0.0
    cpu_s: float = 0.0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    outbox: dict[str, int] = field(default_factory=dict)
    timed_out: bool = False

    @property
    def label(self) -> str:
        return "unthrottled" if self.rate is None else f"{self.rate:g} msg/s"

    @property
    def achieved(self) -> float:
        if len(self.arrivals) < 2:
            return 0.0
        span = self.arrivals[-1].at - self.arrivals[0].at
        return (len(self.arrivals) - 1) / span if span > 0 else math.inf

    @property
    def deviation(self) -> float:
        return self.achieved / self.rate - 1 if self.rate else 0.0

    def drift_ms(self) -> tuple[float, float, float]:
        """Arrivals against ``t_first + i / rate``: latest, earliest, p99 of |deviation| (ms)."""
        if not self.rate or not self.arrivals:
            return 0.0, 0.0, 0.0
        first = self.arrivals[0].at
        offsets = sorted(
            (arrival.at - first - index / self.rate) * 1e3
            for index, arrival in enumerate(self.arrivals)
        )
        magnitudes = sorted(abs(offset) for offset in offsets)
        p99 = magnitudes[max(0, math.ceil(0.99 * len(magnitudes)) - 1)]
        return offsets[-1], offsets[0], p99

    def pauses(self, top: int = 5) -> list[tuple[int, float]]:
        """The longest waits between two arrivals: (index of the later one, ms), by index."""
        at = [arrival.at for arrival in self.arrivals]
        gaps = sorted(((at[i] - at[i - 1], i) for i in range(1, len(at))), reverse=True)
        return sorted((index, gap * 1e3) for gap, index in gaps[:top])

    def stalls(self) -> tuple[int, int]:
        """Pauses over ``PAUSE_MS`` between two arrivals; how many came as a claim batch began."""
        at = [arrival.at for arrival in self.arrivals]
        long = [i for i in range(1, len(at)) if (at[i] - at[i - 1]) * 1e3 > PAUSE_MS]
        return len(long), sum(1 for index in long if index % BATCH == 0)

    def problems(self) -> list[str]:
        numbers = Counter(arrival.number for arrival in self.arrivals if arrival.number is not None)
        strangers = len(self.arrivals) - sum(numbers.values())
        lost = [number for number in range(self.count) if number not in numbers]
        doubled = sorted(number for number, times in numbers.items() if times > 1)
        found = []
        if lost:
            found.append(f"{len(lost)} of {self.count:,} never reached the peer (first {lost[:5]})")
        if doubled:
            found.append(f"{len(doubled)} reached the peer more than once (first {doubled[:5]})")
        if strangers:
            found.append(f"{strangers} messages the bench did not send reached the peer")
        if self.failed or self.outbox.get("sent", 0) != self.count:
            found.append(f"outbox states {self.outbox}; sender failed {self.failed}")
        if self.timed_out:
            found.append(f"gave up: nothing new reached the peer for {GIVE_UP_S:g} s")
        return found

    def met(self) -> bool:
        if self.problems():
            return False
        return self.rate is None or abs(self.deviation) <= TOLERANCE


async def wait_for_bind(gateway: SmsGateway) -> None:
    """SMPP binds in the background after ``start``; sending before would only be retried."""
    deadline = time.monotonic() + BIND_S
    while not gateway.health().connected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{gateway.name}: not connected within {BIND_S:g} s")
        await asyncio.sleep(0.01)


async def run_once(
    peer: Peer,
    factory: ChannelFactory,
    database: Path,
    rate: float | None,
    *,
    count: int,
    window: int | None,
) -> Run:
    """Start a sender on a fresh copy of the queued outbox; wait until the peer has them all."""
    gateway = factory(
        name=NAME,
        options=peer.options(rate or UNTHROTTLED, window),
        context=ChannelContext(phone_region=REGION, public_url=NOWHERE),
    )
    assert isinstance(gateway, SmsGateway)
    engine = open_engine(f"sqlite+aiosqlite:///{database}")
    sessions = session_factory(engine)
    result = Run(peer.adapter, rate, count, window=window or gateway.window)
    await gateway.start(settle_at_once)
    sender = Dispatcher(
        gateway,
        SmsDelivery(),
        db=sessions,
        feed=LiveFeed(),
        rate=gateway.rate,
        window=result.window,
    )
    try:
        await wait_for_bind(gateway)
        before = len(peer.arrivals())
        cpu = time.process_time()
        result.started_at = time.monotonic()
        await sender.start()
        last_seen, seen = time.monotonic(), 0
        while seen < count or sender.sent + sender.failed < count:
            await asyncio.sleep(0.05)
            now = len(peer.arrivals()) - before
            if now != seen:
                last_seen, seen = time.monotonic(), now
            elif time.monotonic() - last_seen > GIVE_UP_S:
                result.timed_out = True
                break
        result.cpu_s = time.process_time() - cpu
        await asyncio.sleep(GRACE_S)
        result.arrivals = sorted(peer.arrivals()[before:], key=lambda arrival: arrival.at)
        result.sent, result.failed, result.retried = sender.sent, sender.failed, sender.retried
        async with sessions() as session:
            states = select(Outbox.state, func.count()).group_by(Outbox.state)
            result.outbox = {state: number for state, number in await session.execute(states)}
    finally:
        await sender.stop()
        await gateway.stop()
        await engine.dispose()
    return result


# --- the report ----------------------------------------------------------------------------------


def verdict(run: Run) -> str:
    return "PASS" if run.met() else "FAIL"


def share(run: Run, free: Run | None) -> str:
    return f"{run.achieved / free.achieved:.1%}" if free and free.achieved else "n/a"


def lines(runs: Sequence[Run]) -> list[str]:
    """One adapter's runs: each configured rate against what arrived, and the unthrottled max."""
    free = next((run for run in runs if run.rate is None), None)
    out = []
    for run in runs:
        if run.rate is None:
            out.append(f"unthrottled (rate {UNTHROTTLED:g}): max {run.achieved:7.2f} msg/s")
        else:
            late, early, p99 = run.drift_ms()
            out.append(
                f"configured {run.rate:4g}: achieved {run.achieved:7.2f} msg/s "
                f"({run.deviation:+.2%}; target +-{TOLERANCE:.0%}: "
                f"{verdict(run)}), {share(run, free)} of the unthrottled max"
            )
            out.append(
                f"    arrival i against t_first + i/{run.rate:g}: latest {late:+.1f} ms, "
                f"earliest {early:+.1f} ms, p99 |deviation| {p99:.1f} ms"
            )
        pauses = ", ".join(f"#{index} {gap:.0f} ms" for index, gap in run.pauses())
        received = len(run.arrivals)
        distinct = len({arrival.number for arrival in run.arrivals} - {None})
        span = run.arrivals[-1].at - run.started_at if run.arrivals else 0.0
        cpu_us = run.cpu_s / received * 1e6 if received else 0.0
        stalls, at_batch = run.stalls()
        out.append(
            f"    longest pauses between arrivals: {pauses}; {stalls} over {PAUSE_MS:g} ms, "
            f"{at_batch} of them before message #{BATCH}·k (the sender reads {BATCH} at a time)"
        )
        out.append(
            f"    peer got {received:,} ({distinct:,} distinct) of {run.count:,}, the last "
            f"{span:.1f} s after the sender started (window {run.window}); sender sent "
            f"{run.sent:,}, failed {run.failed}, retried {run.retried}; "
            f"{cpu_us:,.0f} us CPU per message in this process"
        )
        out.extend(f"    !! {problem}" for problem in run.problems())
    return out


def summary(results: dict[str, list[Run]], rates: Sequence[float]) -> list[str]:
    """One row per adapter: each configured rate as achieved, the unthrottled max, the shares."""
    head = "".join(f"{f'{rate:g} msg/s':>26}" for rate in rates)
    out = [f"{'adapter':<8}{head}{'unthrottled':>14}   throttled / unthrottled"]
    for adapter, runs in results.items():
        free = next((run for run in runs if run.rate is None), None)
        throttled = [run for run in runs if run.rate is not None]
        cells = "".join(
            f"{f'{run.achieved:.2f} ({run.deviation:+.2%} {verdict(run)})':>26}"
            for run in throttled
        )
        shares = " ".join(share(run, free) for run in throttled)
        top = f"{free.achieved:.2f}" if free else "n/a"
        out.append(f"{adapter:<8}{cells}{top:>14}   {shares}")
    return out


# --- the run -------------------------------------------------------------------------------------


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages per run")
    parser.add_argument("--adapters", default=",".join(ADAPTERS), help="comma-separated")
    parser.add_argument("--rates", default="50,200", help="configured rates, msg/s")
    parser.add_argument(
        "--window", type=int, help="sends in flight; default: each gateway's own, as in the hub"
    )
    parser.add_argument(
        "--require-kannel", action="store_true", help="Kannel missing is a failure, not a skip"
    )
    args = parser.parse_args()
    args.adapters = [name.strip() for name in args.adapters.split(",") if name.strip()]
    unknown = sorted(set(args.adapters) - set(ADAPTERS))
    if unknown or not args.adapters:
        parser.error(f"--adapters: {unknown or 'none'}; known: {', '.join(ADAPTERS)}")
    try:
        args.rates = [float(rate) for rate in args.rates.split(",") if rate.strip()]
    except ValueError:
        parser.error("--rates takes numbers, e.g. 50,200")
    if not all(0 < rate < UNTHROTTLED for rate in args.rates):
        parser.error(f"each rate must be above 0 and below {UNTHROTTLED:g}")
    if args.messages < 2 or (args.window is not None and args.window < 1):
        parser.error("--messages must be at least 2 and --window at least 1")
    return args


async def bench_adapter(
    adapter: str, args: argparse.Namespace, template: Path, directory: Path
) -> list[Run]:
    """Every configured rate, then unthrottled, each on a fresh copy of the queued outbox."""
    factory: ChannelFactory = entry_points(group="commhub.adapters")[adapter].load()
    peer = make_peer(adapter)
    await peer.start()
    print(f"{adapter}: peer {peer.describe()}", flush=True)
    runs = []
    try:
        for rate in [*args.rates, None]:
            database = directory / f"{adapter}-{rate or 'max'}.sqlite"
            copy_database(template, database)
            run = await run_once(
                peer, factory, database, rate, count=args.messages, window=args.window
            )
            print(f"  {run.label}: {run.achieved:.2f} msg/s at the peer", flush=True)
            runs.append(run)
    finally:
        await peer.stop()
    return runs


def routing_gateway() -> SmsGateway:
    """A gateway with every run's name and number, built only for ``queue_sms`` to route to."""
    factory: ChannelFactory = entry_points(group="commhub.adapters")["twilio"].load()
    options = {
        "account_sid": "AC" + "0" * 32,
        "auth_token": "never-used",
        "numbers": [OUR_NUMBER],
        "api_base_url": NOWHERE,
    }
    context = ChannelContext(phone_region=REGION, public_url=NOWHERE)
    gateway = factory(name=NAME, options=options, context=context)
    assert isinstance(gateway, SmsGateway)
    return gateway


async def main() -> int:
    args = arguments()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    skipped: dict[str, str] = {}
    if "kannel" in args.adapters and kannel_peer.kannel_binaries() is None:
        skipped["kannel"] = "Kannel is not installed (Debian packages kannel, kannel-extras)"
    results: dict[str, list[Run]] = {}
    broken: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="commhub-bench-sms-") as scratch:
        template = Path(scratch) / "queued.sqlite"
        seconds = await queue_all(template, routing_gateway(), args.messages)
        print(
            f"{args.messages:,} messages queued by queue_sms in {seconds:.1f} s "
            f"({seconds / args.messages * 1e3:.1f} ms each); every run starts on a fresh copy",
            flush=True,
        )
        for adapter in args.adapters:
            if adapter in skipped:
                continue
            try:
                results[adapter] = await bench_adapter(adapter, args, template, Path(scratch))
            except Exception as exc:  # a broken adapter or peer: say so, measure the others
                log.exception("%s: the bench could not run it", adapter)
                broken[adapter] = f"{type(exc).__name__}: {exc}"
    print(
        f"\n{args.messages:,} SMS per run from the outbox through the SMS Dispatcher (window "
        f"{args.window or 'of each gateway'}) and each adapter to its loopback peer; "
        "achieved rate = (n - 1) / (t_last - t_first) of the arrivals at the peer"
    )
    report(())
    for adapter in args.adapters:
        print(f"  {adapter}:")
        if adapter in skipped:
            print(f"    SKIPPED: {skipped[adapter]}")
        elif adapter in broken:
            print(f"    NOT MEASURED: {broken[adapter]}")
        else:
            print("\n".join(f"    {line}" for line in lines(results[adapter])))
    print("  summary, msg/s at the peer:")
    print("\n".join(f"    {line}" for line in summary(results, args.rates)))
    missed = any(not run.met() for runs in results.values() for run in runs)
    if broken or missed or (args.require_kannel and "kannel" in skipped):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
