"""Benchmark: personalised e-mails sent through the adapter against a bare aiosmtplib loop.

    .venv/bin/python bench/smtp_send/run.py [--messages 10000] [--rounds 5]

One personalised message per recipient (name in the To header and in the
greeting), built by ``compose`` as the hub builds every message, goes to an
aiosmtpd sink on 127.0.0.1 that runs in a child process and only counts what
it is sent. In the same run, round by round, A/B then B/A:

- adapter: ``MailboxChannel.send(OutboundEmail(...))`` of a channel built by
  the entry point, one message after the other;
- bare: one ``aiosmtplib.SMTP`` connection, ``sendmail`` in a loop, ``quit``.

Two variants: ``compose+send`` builds every message inside the timed loop
(what the hub pays per message), ``prebuilt`` sends the same bytes composed
beforehand (the adapter's own overhead, undiluted by composing). Each side of
each round opens its connection, sends its share of the recipients and quits;
the sink counts the connections and messages each side made.

Target: the adapter sends >= 80 % of the bare rate in both variants. Exits
non-zero when it is missed or the sink did not get every message.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from commhub.channels import ChannelContext, OutboundEmail
from commhub.domain.email_compose import ComposedEmail, Draft, Recipient, compose
from commhub_email import MailboxChannel, adapter
from latency import report

TARGET_RATIO: Final = 0.8
HOST: Final = "127.0.0.1"
SENDER: Final = Recipient("sales@shop.example", "Отдел продаж")
SUBJECT: Final = "Ваш персональный расчёт готов"
FIRST_NAMES: Final = ("Анна", "Иван", "Мария", "Сергей", "Ольга", "Дмитрий", "Elena", "Peter")
LAST_NAMES: Final = ("Иванова", "Петров", "Смирнова", "Кузнецов", "Попова", "Sokolov", "Miller")
BODY: Final = """Здравствуйте, {name}!

Спасибо за интерес к нашему оборудованию. По вашей заявке №{number} мы подготовили
расчёт: цены действуют до конца месяца, доставка по Москве и области бесплатна.

Если захотите что-то изменить в комплектации, просто ответьте на это письмо:
ответ попадёт вашему менеджеру, и он перезвонит в течение рабочего дня.

Что входит в расчёт:
  - основной комплект и монтаж;
  - два года гарантийного обслуживания;
  - обучение ваших сотрудников на месте.

С уважением,
отдел продаж
+7 495 000-00-00
"""
SINK_START_S: Final = 60
STOP: Final = "stop"


# --- the sink, in a child process ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SinkCounts:
    """What the sink has seen since it started; CPU seconds of its whole process."""

    connections: int = 0
    messages: int = 0
    data_bytes: int = 0
    cpu_s: float = 0.0

    def __sub__(self, before: SinkCounts) -> SinkCounts:
        return SinkCounts(
            self.connections - before.connections,
            self.messages - before.messages,
            self.data_bytes - before.data_bytes,
            self.cpu_s - before.cpu_s,
        )


@dataclass(slots=True)
class CountingHandler:
    """aiosmtpd handler: accepts every message with 250 and keeps only counts."""

    connections: int = 0
    messages: int = 0
    data_bytes: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages += 1
        self.data_bytes += len(envelope.original_content or b"")
        return "250 2.0.0 Ok: queued"

    def counts(self) -> SinkCounts:
        return SinkCounts(self.connections, self.messages, self.data_bytes, time.process_time())


class CountingSMTP(SMTP):
    """aiosmtpd's protocol as it comes, counting the connections it is made for."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        handler: CountingHandler = self.event_handler
        handler.connections += 1
        super().connection_made(transport)


def serve(control: Connection) -> None:
    """The child process: run the sink until told to stop, answering every count request."""
    asyncio.run(_serve(control))


async def _serve(control: Connection) -> None:
    handler = CountingHandler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: CountingSMTP(handler, hostname="sink.bench"), HOST, 0)
    control.send(server.sockets[0].getsockname()[1])
    while await asyncio.to_thread(control.recv) != STOP:
        control.send(handler.counts())
    server.close()
    await server.wait_closed()


class Sink:
    """The parent's end of the sink process."""

    def __init__(self) -> None:
        spawn = multiprocessing.get_context("spawn")
        self._control, child_end = spawn.Pipe()
        self._process = spawn.Process(target=serve, args=(child_end,), name="smtp sink")
        self.port = 0

    def start(self) -> None:
        self._process.start()
        if not self._control.poll(SINK_START_S):
            raise RuntimeError("the SMTP sink did not start")
        self.port = self._control.recv()

    def counts(self) -> SinkCounts:
        self._control.send("count")
        counts: SinkCounts = self._control.recv()
        return counts

    def stop(self) -> None:
        if self._process.is_alive():
            self._control.send(STOP)
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()


# --- the messages --------------------------------------------------------------------------------


def recipients(count: int) -> list[Recipient]:
    """``count`` distinct people, each with a name of their own."""
    return [
        Recipient(
            f"client{number:05d}@mail.example",
            f"{FIRST_NAMES[number % len(FIRST_NAMES)]} {LAST_NAMES[number % len(LAST_NAMES)]}",
        )
        for number in range(count)
    ]


def personalised(person: Recipient, number: int, max_bytes: int) -> ComposedEmail:
    """One person's message, as the hub composes it: their name in To and in the greeting."""
    draft = Draft(
        sender=SENDER,
        to=(person,),
        subject=SUBJECT,
        text=BODY.format(name=person.name.split()[0], number=100_000 + number),
    )
    return compose(draft, now=datetime.now(UTC), max_bytes=max_bytes)


# --- the two sides ------------------------------------------------------------------------------


Build = Callable[[int], ComposedEmail]
"""The ``n``-th message of a round: composed on the spot, or taken from those built before."""


def channel_for(port: int) -> MailboxChannel:
    options: dict[str, Any] = {
        "address": SENDER.address,
        "display_name": SENDER.name,
        "smtp": {"host": HOST, "port": port, "security": "plain"},
    }
    return adapter(name="bench", options=options, context=ChannelContext(phone_region="RU"))


async def through_adapter(port: int, count: int, build: Build) -> None:
    channel = channel_for(port)
    try:
        for number in range(count):
            mail = build(number)
            await channel.send(
                OutboundEmail(
                    key=f"bench-{number}",
                    sender=mail.sender,
                    recipients=mail.recipients,
                    raw=mail.raw,
                )
            )
    finally:
        await channel.stop()


async def bare(port: int, count: int, build: Build) -> None:
    client = aiosmtplib.SMTP(hostname=HOST, port=port, start_tls=False)
    await client.connect()
    try:
        for number in range(count):
            mail = build(number)
            await client.sendmail(mail.sender, list(mail.recipients), mail.raw)
    finally:
        await client.quit()


Side = Callable[[int, int, Build], Awaitable[None]]


# --- timing ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Rates:
    """One side's rounds: wall and CPU seconds in this process, and what the sink saw."""

    name: str
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    sink: list[SinkCounts] = field(default_factory=list)

    async def time(self, sink: Sink, side: Side, count: int, build: Build) -> None:
        """One side sends ``count`` messages to the sink; the sink's counts are read around it."""
        gc.collect()
        before = sink.counts()
        wall, cpu = time.perf_counter(), time.process_time()
        await side(sink.port, count, build)
        self.seconds.append(time.perf_counter() - wall)
        self.cpu_seconds.append(time.process_time() - cpu)
        self.sink.append(sink.counts() - before)
        self.sent.append(count)

    @property
    def rate(self) -> float:
        """Messages per second over every round together."""
        return sum(self.sent) / sum(self.seconds) if self.seconds else 0.0

    def round_rates(self) -> list[float]:
        return [sent / seconds for sent, seconds in zip(self.sent, self.seconds, strict=True)]

    def cpu_us(self) -> float:
        """CPU microseconds this process spent per message: the client's own cost, undiluted."""
        return sum(self.cpu_seconds) / sum(self.sent) * 1e6 if self.sent else 0.0

    def summary(self) -> str:
        wall = sum(self.seconds)
        sink_us = sum(c.cpu_s for c in self.sink) / sum(self.sent) * 1e6 if self.sent else 0.0
        connections = "/".join(str(c.connections) for c in self.sink)
        return (
            f"{self.name} {self.rate:>6,.0f} msg/s ({sum(self.sent):,} in {wall:5.2f} s) | "
            f"cpu per message: client {self.cpu_us():>5,.0f} us, sink {sink_us:>5,.0f} us | "
            f"sink saw connections per round {connections}"
        )

    def problems(self) -> list[str]:
        found = []
        for turn, (sent, seen) in enumerate(zip(self.sent, self.sink, strict=True)):
            if seen.messages != sent:
                found.append(f"{self.name} round {turn + 1}: sink got {seen.messages} of {sent}")
            if seen.connections != 1:
                found.append(f"{self.name} round {turn + 1}: {seen.connections} connections")
        return found


@dataclass(frozen=True, slots=True)
class Throughput:
    """The adapter against the bare loop over the same messages, with the target it must meet."""

    label: str
    measured: Rates
    baseline: Rates

    @property
    def ratio(self) -> float:
        return self.measured.rate / self.baseline.rate if self.baseline.rate else 0.0

    @property
    def wrong(self) -> list[str]:
        found = self.measured.problems() + self.baseline.problems()
        if len(self.measured.seconds) != len(self.baseline.seconds) or not self.measured.seconds:
            found.append("the sides ran a different number of rounds")
        return found

    def met(self) -> bool:
        return not self.wrong and self.ratio >= TARGET_RATIO

    def lines(self) -> list[str]:
        verdict = "PASS" if self.met() else "FAIL"
        per_round = " ".join(
            f"{a / b:4.2f}"
            for a, b in zip(self.measured.round_rates(), self.baseline.round_rates(), strict=True)
        )
        cpu_ratio = self.measured.cpu_us() / self.baseline.cpu_us() if self.baseline.sent else 0.0
        return [
            f"{self.label}:",
            f"    {self.measured.summary()}",
            f"    {self.baseline.summary()}",
            f"    ratio adapter/bare {self.ratio:4.2f} (target >= {TARGET_RATIO:g}; "
            f"per round {per_round}): {verdict}",
            f"    client cpu per message adapter/bare {cpu_ratio:4.2f} (the adapter's own cost)",
            *(f"    !! {problem}" for problem in self.wrong),
        ]


def shares(total: int, rounds: int) -> list[range]:
    """The recipients split into ``rounds`` consecutive slices of (nearly) equal size."""
    edges = [total * turn // rounds for turn in range(rounds + 1)]
    return [range(start, end) for start, end in zip(edges, edges[1:], strict=False)]


async def variant(
    label: str, sink: Sink, slices: Sequence[range], build_for: Callable[[range], Build]
) -> Throughput:
    """Both sides over every slice, A/B then B/A, so machine noise hits both alike."""
    measured, baseline = Rates("adapter"), Rates("bare   ")
    sides: tuple[tuple[Rates, Side], ...] = ((measured, through_adapter), (baseline, bare))
    for turn, share in enumerate(slices):
        build = build_for(share)
        for rates, side in sides if turn % 2 == 0 else sides[::-1]:
            await rates.time(sink, side, len(share), build)
    return Throughput(label, measured, baseline)


# --- the run -------------------------------------------------------------------------------------


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000, help="recipients, one each")
    parser.add_argument("--rounds", type=int, default=5, help="slices the recipients go in")
    args = parser.parse_args()
    if not 0 < args.rounds <= args.messages:
        parser.error("--rounds must be between 1 and --messages")

    people = recipients(args.messages)
    max_bytes = channel_for(1).max_message_bytes
    prebuilt = [personalised(person, n, max_bytes) for n, person in enumerate(people)]
    sizes = sorted(len(mail.raw) for mail in prebuilt)
    slices = shares(args.messages, args.rounds)

    def composing(share: range) -> Build:
        return lambda n: personalised(people[share[n]], share[n], max_bytes)

    def composed(share: range) -> Build:
        return lambda n: prebuilt[share[n]]

    sink = Sink()
    sink.start()
    print(
        f"{args.messages:,} personalised messages ({sizes[0]:,}-{sizes[-1]:,} bytes) per side "
        f"and variant, in {args.rounds} rounds alternating A/B, B/A; aiosmtpd sink in a child "
        f"process on {HOST}:{sink.port}"
    )
    try:
        # One short round of each first, so imports, caches and the sink are warm.
        await variant("warm-up", sink, shares(min(200, args.messages), 2), composed)
        results = [
            await variant("compose+send", sink, slices, composing),
            await variant("prebuilt", sink, slices, composed),
        ]
    finally:
        sink.stop()
    report(())  # the shared report: the machine's load; the throughput lines are this bench's
    for result in results:
        for line in result.lines():
            print(f"  {line}")
    return 0 if all(result.met() for result in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
