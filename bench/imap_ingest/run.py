"""Benchmark: 10,000 messages waiting in a Dovecot mailbox, imported onto cards.

    .venv/bin/python bench/imap_ingest/run.py [--backend sqlite|postgres|both] [--messages 10000]

A private Dovecot on 127.0.0.1 holds a mailbox of personalised customer mail
(plain text, text+HTML, a few small attachments; about half from senders
already on a card; a fifth of them replies threading to earlier ones). On
each backend, in the same run, three sides read or file the same messages:

1. ``whole path``: the hub as it runs: its ``Inbound`` path (one filing
   writer, in batches) and the ``email`` adapter's channel on a fresh database holding the contacts,
   timed from ``channel.start`` until the inbox has filed every message;
2. ``IMAP only``: a bare aioimaplib session fetching the same messages in the
   same batches (``UID FETCH a:b (UID BODY.PEEK[])``), no parsing, no storing:
   the transfer ceiling;
3. ``store only``: the same bytes filed through ``file_email`` directly, one
   session and transaction per message (how the hub filed mail before the one
   writer batched it), no IMAP: the store ceiling of one message at a time.

Before them, once: ``parse only``, ``parse_email`` on every message, the CPU
that filing spends before any SQL.

Printed: messages/s of each, the whole path's ratio to each ceiling, and the
whole path's peak memory (Python allocations and resident set) beside the
size of the mailbox. No target; exits non-zero only when a message was lost,
filed twice, or kept as unreadable.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import gc
import logging
import multiprocessing
import os
import pstats
import quopri
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The same Dovecot harness the integration tests use (tests/dovecot.py): a
# throwaway server with its own config, and doveadm import for bulk mail.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

import aioimaplib
from sqlalchemy import distinct, func, select

import commhub_email
from commhub.channels import ChannelContext, EmailArrived
from commhub.domain.contacts import name_key
from commhub.domain.email_messages import EmailParseError, parse_email
from commhub.models import Contact, Email, EmailCursorRow, Interaction, MailFailure
from commhub.services.email_cursors import StoredCursors
from commhub.services.email_filing import OwnAddress, file_email
from commhub.services.filing import Outcome
from commhub.services.inbound import Inbound
from commhub.services.live import LiveFeed
from commhub.store import contacts as contact_store
from commhub.store.engine import SessionFactory, open_engine, session_factory
from commhub.store.migrate import upgrade
from databases import BACKENDS, bench_database, recreate
from dovecot import HOST, DovecotServer

REGION: Final = "RU"
MAILBOX: Final = "sales"
ADDRESS: Final = "sales@shop.example"
USER: Final = "sales"
PASSWORD: Final = "bench-secret"
FOLDER: Final = "INBOX"
BATCH: Final = 100
"""The adapter's default ``batch``; the bare fetch uses the same."""
KNOWN: Final = 2_000
"""Contacts on cards before the import, each with one e-mail address."""
STRANGERS: Final = 3_000
"""Other senders, on no card."""
FROM_KNOWN: Final = 0.55
REPLIES: Final = 0.2
ATTACHED: Final = 0.03
SEED: Final = 20261124
MOSCOW: Final = timezone(timedelta(hours=3))
SLOWEST_PER_S: Final = 20
"""A side slower than this is abandoned: something is stuck."""
POLL_S: Final = 0.01
CHILD_START_S: Final = 60


# --- the mailbox -------------------------------------------------------------------------------

FIRST: Final = (
    ("Анна", "а"), ("Мария", "а"), ("Ольга", "а"), ("Елена", "а"), ("Наталья", "а"),
    ("Иван", ""), ("Сергей", ""), ("Дмитрий", ""), ("Алексей", ""), ("Павел", ""),
)  # fmt: skip
LAST: Final = ("Иванов", "Петров", "Смирнов", "Кузнецов", "Попов", "Соколов", "Морозов", "Волков")
LATIN: Final = {
    "Иванов": "ivanov", "Петров": "petrov", "Смирнов": "smirnov", "Кузнецов": "kuznetsov",
    "Попов": "popov", "Соколов": "sokolov", "Морозов": "morozov", "Волков": "volkov",
}  # fmt: skip
COMPANIES: Final = ("stroymash", "teplo-dom", "agro-invest", "medsnab", "avtoline", "polymer")
WEBMAIL: Final = ("mail.example", "yandex.example", "inbox.example")
PRODUCTS: Final = ("котёл КГ-24", "насос ЦН-40", "радиатор Р-500", "бойлер Б-200", "фильтр ФМ-3")
CITIES: Final = ("Москва", "Казань", "Тверь", "Самара", "Пермь", "Владимир")
MAILERS: Final = ("Microsoft Outlook 16.0", "Mozilla Thunderbird 115.4", "Apple Mail (2.3731)")
SUBJECTS: Final = (
    "Запрос цены: {product}",
    "Счёт на {product}, заказ №{order}",
    "Доставка в {city} — когда?",
    "Рекламация по заказу №{order}",
    "Спасибо за {product}!",
)
OPENINGS: Final = (
    "Подскажите, пожалуйста, цену на {product} в количестве {quantity} шт. с доставкой в {city}.",
    "Пришлите, пожалуйста, счёт на {product} ({quantity} шт.) по заказу №{order}.",
    "Когда ждать доставку заказа №{order} в {city}? Обещали на этой неделе.",
    "По заказу №{order} пришёл {product} с повреждённой упаковкой, фото приложу позже.",
    "Установили {product}, всё работает. Спасибо за быструю доставку в {city}!",
)
MIDDLE: Final = """Нам важно получить ответ до конца недели: от этого зависит график монтажа
на объекте, и бригада уже забронирована. Если нужной модели нет на складе, предложите,
пожалуйста, аналог с такими же присоединительными размерами и сроком поставки.

Реквизиты компании прежние, договор №{order}-Д от прошлого года. Оплата по безналу,
отсрочка как обычно. Если понадобится доверенность на получение, пришлю сразу."""
SIGNATURE: Final = "С уважением,\n{name}\n{company}\nтел. +7 9{phone:02d} 555-{order:04d}"


@dataclass(frozen=True, slots=True)
class Sender:
    name: str
    address: str
    company: str


@dataclass(frozen=True, slots=True)
class Mailbag:
    """The messages in UID order, and what a correct import makes of them."""

    raws: list[bytes]
    dates: list[datetime]
    known: list[Sender]
    from_known: int
    replies: int

    @property
    def size(self) -> int:
        return sum(len(raw) for raw in self.raws)


def senders(rng: random.Random, count: int, prefix: str) -> list[Sender]:
    found = []
    for n in range(count):
        first, ending = rng.choice(FIRST)
        last = rng.choice(LAST)
        company = rng.choice(COMPANIES)
        domain = f"{company}.example" if rng.random() < 0.7 else rng.choice(WEBMAIL)
        login = f"{prefix}{n}.{LATIN[last]}"
        found.append(Sender(f"{first} {last}{ending}", f"{login}@{domain}", company))
    return found


def encoded(text: str) -> str:
    """A header value as mail clients send non-ASCII: RFC 2047 encoded-words, folded."""
    return Header(text, "utf-8", maxlinelen=76).encode()


def body_part(content_type: str, text: str, encoding: str) -> str:
    """A MIME part (or the message's own body) in one of the encodings clients use."""
    data = text.encode()
    if encoding == "base64":
        payload = base64.encodebytes(data).decode()
    elif encoding == "quoted-printable":
        payload = quopri.encodestring(data).decode()
    else:
        payload = text
    return (
        f"Content-Type: {content_type}; charset=utf-8\n"
        f"Content-Transfer-Encoding: {encoding}\n\n{payload}\n"
    )


def as_html(text: str) -> str:
    paragraphs = "".join(
        f'<p style="margin:0 0 8px">{block.replace(chr(10), "<br>")}</p>\n'
        for block in text.split("\n\n")
    )
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        '</head>\n<body><div style="font-family:Calibri,Arial,sans-serif;font-size:11pt">\n'
        f"{paragraphs}</div></body></html>"
    )


def write_mailbag(count: int, seed: int = SEED) -> Mailbag:
    """``count`` personalised messages, as a mail server holds them (CRLF line ends)."""
    rng = random.Random(seed)
    known = senders(rng, KNOWN, "client")
    on_cards = {sender.address for sender in known}
    strangers = senders(rng, STRANGERS, "guest")
    moment = datetime(2026, 11, 2, 9, 0, tzinfo=MOSCOW)
    raws: list[bytes] = []
    dates: list[datetime] = []
    threads: list[tuple[Sender, str, str, str]] = []  # sender, subject, message-ids, text
    from_known = replies = 0
    for number in range(count):
        moment += timedelta(seconds=rng.randint(1, 90))
        order = rng.randint(1000, 9999)
        words = {
            "product": rng.choice(PRODUCTS),
            "city": rng.choice(CITIES),
            "order": order,
            "quantity": rng.randint(1, 40),
        }
        header: dict[str, str] = {}
        if threads and rng.random() < REPLIES:
            sender, subject, chain, earlier = rng.choice(threads)
            *_, parent = chain.split()
            header |= {"In-Reply-To": parent, "References": chain}
            subject = subject if subject.startswith("Re: ") else f"Re: {subject}"
            quote = "\n".join(f"> {line}" for line in earlier.splitlines()[:8])
            replies += 1
        else:
            sender = rng.choice(known) if rng.random() < FROM_KNOWN else rng.choice(strangers)
            subject, chain, quote = rng.choice(SUBJECTS).format(**words), "", ""
        from_known += sender.address in on_cards
        message_id = f"<{number}.{rng.getrandbits(48):012x}@{sender.address.split('@')[1]}>"
        greeting = rng.choice(("Добрый день", "Здравствуйте", "Коллеги, добрый день"))
        text = (
            f"{greeting}!\n\n{rng.choice(OPENINGS).format(**words)}\n\n{MIDDLE.format(**words)}\n\n"
            + SIGNATURE.format(
                name=sender.name, company=sender.company, phone=number % 100, order=order
            )
            + (f"\n\n{quote}" if quote else "")
        )
        threads.append((sender, subject, f"{chain} {message_id}".strip(), text))
        raws.append(message(rng, sender, subject, message_id, moment, header, text, words))
        dates.append(moment)
    return Mailbag(raws, dates, known, from_known, replies)


def message(
    rng: random.Random,
    sender: Sender,
    subject: str,
    message_id: str,
    moment: datetime,
    header: dict[str, str],
    text: str,
    words: Mapping[str, object],
) -> bytes:
    boundary = f"----=_Part_{rng.getrandbits(64):016x}"
    domain = sender.address.split("@")[1]
    fields = {
        "Return-Path": f"<{sender.address}>",
        "Received": f"from mx.{domain} (mx.{domain} [198.51.100.{rng.randint(1, 254)}])\n"
        f"\tby mail.shop.example with ESMTPS; {format_datetime(moment)}",
        "From": f"{encoded(sender.name)} <{sender.address}>",
        "To": f"{encoded('Отдел продаж')} <{ADDRESS}>",
        "Subject": encoded(subject),
        "Date": format_datetime(moment),
        "Message-ID": message_id,
        **header,
        "MIME-Version": "1.0",
        "X-Mailer": rng.choice(MAILERS),
    }
    shape = rng.random()
    if shape < ATTACHED:
        name = f"order-{words['order']}.pdf"
        attachment = base64.encodebytes(rng.randbytes(rng.randint(4_000, 24_000))).decode()
        body = (
            f'Content-Type: multipart/mixed; boundary="{boundary}m"\n\n'
            f"--{boundary}m\n{body_part('text/plain', text, 'quoted-printable')}"
            f'--{boundary}m\nContent-Type: application/pdf; name="{name}"\n'
            f'Content-Disposition: attachment; filename="{name}"\n'
            f"Content-Transfer-Encoding: base64\n\n{attachment}\n--{boundary}m--\n"
        )
    elif shape < 0.5:
        encoding = rng.choice(("quoted-printable", "base64"))
        body = (
            f'Content-Type: multipart/alternative; boundary="{boundary}"\n\n'
            f"--{boundary}\n{body_part('text/plain', text, encoding)}"
            f"--{boundary}\n{body_part('text/html', as_html(text), encoding)}--{boundary}--\n"
        )
    else:
        encoding = rng.choice(("quoted-printable", "quoted-printable", "base64", "8bit"))
        body = body_part("text/plain", text, encoding)
    lines = "".join(f"{name}: {value}\n" for name, value in fields.items()) + body
    return lines.encode().replace(b"\n", b"\r\n")


# --- timings and memory ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """Wall and process CPU seconds of one timed stretch."""

    wall: float
    cpu: float

    @classmethod
    def now(cls) -> Span:
        return cls(time.perf_counter(), time.process_time())

    def since(self) -> Span:
        now = Span.now()
        return Span(now.wall - self.wall, now.cpu - self.cpu)


@dataclass(slots=True)
class MemoryUse:
    """The import's process: its resident set when the import began, and the peaks above it."""

    rss_start: int = 0
    rss_growth: int | None = None
    """Peak resident set (VmHWM, reset at the start) minus ``rss_start``; None off Linux."""
    python_peak: int | None = None
    """Most bytes of Python objects allocated during the import alive at once (tracemalloc)."""


def resident(name: str) -> int:
    """``VmRSS`` or ``VmHWM`` of this process in bytes (proc(5), /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no {name} in /proc/self/status")


@contextmanager
def watching_memory(*, python: bool) -> Iterator[MemoryUse]:
    """The peaks of the block's memory; ``python`` also traces allocations (3x slower)."""
    gc.collect()
    use = MemoryUse()
    try:
        # Writing "5" sets VmHWM back to the current resident set (proc(5), Linux 4.0+).
        Path("/proc/self/clear_refs").write_text("5")
        use.rss_start = resident("VmRSS")
        rss = True
    except (OSError, LookupError):
        rss = False
    if python:
        tracemalloc.start()
    try:
        yield use
    finally:
        if python:
            use.python_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        if rss:
            use.rss_growth = resident("VmHWM") - use.rss_start


@dataclass(slots=True)
class Side:
    """One way of getting the mailbox's messages: how fast, and what went wrong."""

    name: str
    messages: int
    span: Span
    memory: MemoryUse | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.messages / self.span.wall if self.span.wall else 0.0

    def line(self) -> str:
        return (
            f"{self.name:<11} {self.rate:>8,.0f} msg/s  ({self.messages:,} in "
            f"{self.span.wall:6.2f} s, cpu {self.span.cpu / self.span.wall:4.0%} of one core)"
        )

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> Side:
        """Back from ``asdict``, as the import's process sends it."""
        memory = fields["memory"]
        return cls(
            name=fields["name"],
            messages=fields["messages"],
            span=Span(**fields["span"]),
            memory=MemoryUse(**memory) if memory is not None else None,
            problems=list(fields["problems"]),
        )


def time_limit(messages: int) -> float:
    return 30 + messages / SLOWEST_PER_S


# --- the sides -----------------------------------------------------------------------------------


def parse_only(bag: Mailbag) -> Side:
    """``parse_email`` on every message: the CPU that filing spends before any SQL."""
    gc.collect()
    start = Span.now()
    unreadable = 0
    for raw in bag.raws:
        try:
            parse_email(raw)
        except EmailParseError:
            unreadable += 1
    side = Side("parse only", len(bag.raws), start.since())
    if unreadable:
        side.problems.append(f"{unreadable:,} messages unreadable")
    return side


async def fetch_bare(port: int, expected: int, size: int) -> Side:
    """aioimaplib alone: log in, SEARCH, then UID FETCH the bodies batch by batch; count them."""
    client = aioimaplib.IMAP4(host=HOST, port=port, timeout=30)
    gc.collect()
    start = Span.now()
    await client.wait_hello_from_server()
    await client.login(USER, PASSWORD)
    await client.select(FOLDER)
    found = await client.uid_search("ALL", charset=None)
    uids = sorted(int(word) for line in found.lines[:-1] for word in line.split() if word.isdigit())
    bodies = received = 0
    for first in range(0, len(uids), BATCH):
        batch = uids[first : first + BATCH]
        answer = await client.uid("fetch", f"{batch[0]}:{batch[-1]}", "(UID BODY.PEEK[])")
        # aioimaplib hands each literal (here: each message's bytes) over as a bytearray.
        literals = [line for line in answer.lines if isinstance(line, bytearray)]
        bodies += len(literals)
        received += sum(len(literal) for literal in literals)
    side = Side("IMAP only", bodies, start.since())
    await client.logout()
    if bodies != expected or received != size:
        side.problems.append(f"fetched {bodies:,} messages, {received:,} bytes; expected {size:,}")
    return side


async def file_direct(url: str, folder: Folder) -> Side:
    """``file_email`` on the same bytes, one session and commit each."""
    loop = asyncio.get_running_loop()
    mailbox = OwnAddress(MAILBOX, ADDRESS)
    outcomes = dict.fromkeys(Outcome, 0)
    engine = open_engine(url)
    sessions = session_factory(engine)
    messages = zip(folder.uids, folder.bag.raws, folder.bag.dates, strict=True)
    try:
        gc.collect()
        start = Span.now()
        for uid, raw, date in messages:
            arrived = EmailArrived(
                source=MAILBOX,
                folder=FOLDER,
                uidvalidity=folder.uidvalidity,
                uid=uid,
                raw=raw,
                settled=loop.create_future(),
                size=len(raw),
                received_at=date,
            )
            async with sessions() as session:
                filed = await file_email(
                    session, arrived, mailbox, region=REGION, create_unknown=False
                )
                await session.commit()
            outcomes[filed.outcome] += 1
        side = Side("store only", outcomes[Outcome.NEW], start.since())
    finally:
        await engine.dispose()
    if outcomes[Outcome.DUPLICATE] or outcomes[Outcome.KEPT]:
        side.problems.append(f"file_email outcomes: { {k.value: v for k, v in outcomes.items()} }")
    return side


def channel_options(port: int) -> dict[str, Any]:
    """The mailbox's ``[[channels]]`` options as an admin would write them."""
    return {
        "address": ADDRESS,
        "imap": {
            "host": HOST,
            "port": port,
            "security": "plain",
            "username": USER,
            "password": PASSWORD,
            "batch": BATCH,
        },
    }


async def import_whole(
    sessions: SessionFactory, port: int, expected: int, *, python_memory: bool
) -> Side:
    """The hub's path: channel → sink → inbox → file_email, until the inbox has filed them all."""
    inbound = Inbound(db=sessions, feed=LiveFeed(), region=REGION)
    await inbound.start()
    inbound.mail.add_mailbox(MAILBOX, ADDRESS)
    channel = commhub_email.adapter(
        name=MAILBOX,
        options=channel_options(port),
        context=ChannelContext(phone_region=REGION, email_cursors=StoredCursors(sessions)),
    )
    inbox = inbound.mail
    deadline = time.perf_counter() + time_limit(expected)
    try:
        with watching_memory(python=python_memory) as memory:
            start = Span.now()
            await channel.start(inbound.sink)
            while inbox.filed + inbox.duplicates + inbox.failed < expected:
                if time.perf_counter() > deadline:
                    break
                await asyncio.sleep(POLL_S)
            side = Side("whole path", inbox.filed, start.since(), memory)
    finally:
        await channel.stop()
        await inbound.stop()
    [watcher] = channel.watchers
    status = watcher.status()
    if inbox.duplicates or inbox.failed or status["reconnects"] or status["error"]:
        side.problems.append(
            f"inbox: {inbox.duplicates} duplicates, {inbox.failed} unreadable; watcher: "
            f"{status['reconnects']} reconnects, error {status['error']!r}"
        )
    if status["imported"] != expected:
        side.problems.append(f"the watcher handed over {status['imported']:,} messages")
    return side


@dataclass(frozen=True, slots=True)
class ImportJob:
    """What the import's process needs: a prepared database and the server's port."""

    url: str
    port: int
    expected: int
    python_memory: bool = False


def import_in_child(job: ImportJob, report: Connection) -> None:
    """The child process: the whole path, with nothing else in its memory; sends its Side."""
    logging.basicConfig(level=logging.WARNING, format="  %(levelname)s %(name)s: %(message)s")
    report.send(asdict(asyncio.run(_import_in_child(job))))


async def _import_in_child(job: ImportJob) -> Side:
    engine = open_engine(job.url)
    try:
        sessions = session_factory(engine)
        return await import_whole(sessions, job.port, job.expected, python_memory=job.python_memory)
    finally:
        await engine.dispose()


async def import_apart(job: ImportJob) -> Side:
    """Run the whole path in a process of its own, so its peak memory is the import's alone."""
    spawn = multiprocessing.get_context("spawn")
    reader, writer = spawn.Pipe(duplex=False)
    process = spawn.Process(target=import_in_child, args=(job, writer), name="whole path")
    process.start()
    writer.close()
    try:
        if not await asyncio.to_thread(reader.poll, time_limit(job.expected) + CHILD_START_S):
            raise RuntimeError("the import's process sent nothing in time")
        fields = reader.recv()
    except EOFError:
        raise RuntimeError(f"the import's process died (exit code {process.exitcode})") from None
    finally:
        process.join(10)
        if process.is_alive():
            process.terminate()
    return Side.from_dict(fields)


# --- the database ------------------------------------------------------------------------------


async def fresh_database(backend: str, directory: Path, name: str, bag: Mailbag) -> str:
    """The URL of an empty, migrated database holding the contacts already on cards."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{directory / f'{name}.sqlite'}"
    else:
        database = bench_database("imap_ingest", backend, len(bag.raws))
        await recreate(database)
        url = database.url
    engine = open_engine(url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            contacts = [
                Contact(name=sender.name, name_key=name_key(sender.name), extra={})
                for sender in bag.known
            ]
            session.add_all(contacts)
            await session.flush()
            for contact, sender in zip(contacts, bag.known, strict=True):
                await contact_store.add_points(session, contact.id, [], [sender.address])
            await session.commit()
    finally:
        await engine.dispose()
    return url


@dataclass(frozen=True, slots=True)
class Audit:
    """What a filing side left in the database."""

    interactions: int
    keys: int
    emails: int
    uids: int
    failures: int
    last_uid: int | None
    on_cards: int
    threaded: int

    def problems(self, expected: int, last_uid: int) -> list[str]:
        found = []
        if self.interactions != expected or self.emails != expected or self.uids != expected:
            found.append(
                f"stored {self.interactions:,} interactions, {self.emails:,} e-mails of "
                f"{self.uids:,} UIDs for {expected:,} messages"
            )
        if self.keys != self.interactions:
            found.append(f"{self.interactions - self.keys:,} messages filed twice")
        if self.failures:
            found.append(f"{self.failures:,} messages kept as unreadable")
        if self.last_uid != last_uid:
            found.append(f"the folder's cursor stands at UID {self.last_uid}, not {last_uid}")
        return found


async def audit(url: str) -> Audit:
    email = Interaction.channel == "email"
    counts = {
        "interactions": select(func.count()).where(email),
        "keys": select(func.count(distinct(Interaction.external_id))).where(email),
        "emails": select(func.count()).select_from(Email),
        "uids": select(func.count(distinct(Email.uid))),
        "failures": select(func.count()).select_from(MailFailure),
        "on_cards": select(func.count()).where(email, Interaction.contact_id.is_not(None)),
        "threaded": select(func.count()).select_from(Email).where(Email.thread_id != Email.id),
    }
    engine = open_engine(url)
    try:
        async with session_factory(engine)() as session:
            cursor = await session.get(EmailCursorRow, (MAILBOX, FOLDER))
            found = {name: await session.scalar(query) or 0 for name, query in counts.items()}
    finally:
        await engine.dispose()
    return Audit(last_uid=cursor.last_uid if cursor is not None else None, **found)


# --- the run -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Folder:
    """The mailbox as the server holds it."""

    port: int
    bag: Mailbag
    uids: list[int]
    uidvalidity: int


@dataclass(slots=True)
class Runs:
    """Every run of one side on one backend; the median run stands for the side."""

    name: str
    runs: list[Side] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(run.rate for run in self.runs) if self.runs else 0.0

    @property
    def problems(self) -> list[str]:
        return [problem for run in self.runs for problem in run.problems]

    def line(self) -> str:
        if len(self.runs) == 1:
            return self.runs[0].line()
        each = ", ".join(f"{run.rate:,.0f}" for run in self.runs)
        cpu = sum(run.span.cpu for run in self.runs) / sum(run.span.wall for run in self.runs)
        return (
            f"{self.name:<11} {self.rate:>8,.0f} msg/s  (median of {len(self.runs)} runs: "
            f"{each}; cpu {cpu:4.0%} of one core)"
        )


async def run_backend(
    backend: str, folder: Folder, directory: Path, args: argparse.Namespace
) -> list[Runs]:
    """Each side ``args.rounds`` times, store only and whole path in turn A/B, then B/A."""
    count, last_uid = len(folder.uids), folder.uids[-1]
    imap, store, whole = Runs("IMAP only"), Runs("store only"), Runs("whole path")
    filed: Audit | None = None

    async def store_only(turn: int) -> None:
        url = await fresh_database(backend, directory, f"store-only-{turn}", folder.bag)
        side = await file_direct(url, folder)
        side.problems += (await audit(url)).problems(count, last_uid)
        store.runs.append(side)

    async def whole_path(turn: int) -> None:
        nonlocal filed
        url = await fresh_database(backend, directory, f"whole-path-{turn}", folder.bag)
        side = await import_apart(ImportJob(url, folder.port, count))
        filed = await audit(url)
        side.problems += filed.problems(count, last_uid)
        whole.runs.append(side)

    for turn in range(args.rounds):
        imap.runs.append(await fetch_bare(folder.port, count, folder.bag.size))
        for run in (store_only, whole_path) if turn % 2 == 0 else (whole_path, store_only):
            await run(turn)
    assert filed is not None
    report(backend, (imap, store, whole), filed, folder.bag)
    extra: list[Runs] = []
    if args.python_memory:
        url = await fresh_database(backend, directory, "traced", folder.bag)
        traced = await import_apart(ImportJob(url, folder.port, count, python_memory=True))
        peak = traced.memory.python_peak if traced.memory else None
        print(
            f"    whole path again under tracemalloc (untimed, {traced.rate:,.0f} msg/s): "
            f"Python allocations peak {(peak or 0) / 1e6:.1f} MB"
        )
        extra.append(Runs("traced", [traced]))
    if args.profile:
        url = await fresh_database(backend, directory, "profiled", folder.bag)
        await profile(backend, url, folder, args.profile)
    return [imap, store, whole, *extra]


def report(backend: str, sides: tuple[Runs, Runs, Runs], filed: Audit, bag: Mailbag) -> None:
    imap, store, whole = sides
    print(f"  {backend}:")
    for side in sides:
        print(f"    {side.line()}")
    in_turn = 1 / (1 / imap.rate + 1 / store.rate) if imap.rate and store.rate else 0.0
    rounds = ""
    if len(whole.runs) > 1:
        each = [w.rate / s.rate for w, s in zip(whole.runs, store.runs, strict=True)]
        rounds = f" (per round {' '.join(f'{ratio:4.2f}' for ratio in each)})"
    print(
        f"    ratio whole path / store only {whole.rate / store.rate:4.2f}{rounds}, "
        f"/ IMAP only {whole.rate / imap.rate:5.3f}; "
        f"fetching and filing strictly in turn would give {in_turn:,.0f} msg/s"
    )
    starts = [run.memory.rss_start for run in whole.runs if run.memory]
    growths = [run.memory.rss_growth for run in whole.runs if run.memory and run.memory.rss_growth]
    growth = f"+{max(growths) / 1e6:.1f} MB" if growths else "unknown"
    print(
        f"    whole path memory, in a process of its own: resident set {max(starts) / 1e6:.0f} MB "
        f"at the start, peak {growth} above it; the mailbox is {bag.size / 1e6:.1f} MB"
    )
    print(
        f"    on cards {filed.on_cards:,} (senders on cards: {bag.from_known:,}); "
        f"threaded under an earlier message {filed.threaded:,} of {bag.replies:,} replies"
    )
    for side in sides:
        for problem in side.problems:
            print(f"    !! {side.name}: {problem}")


async def profile(backend: str, url: str, folder: Folder, top: int) -> None:
    """One more whole-path run under cProfile (untimed): the event loop thread's own costs."""
    engine = open_engine(url)
    profiler = cProfile.Profile()
    try:
        profiler.enable()
        await import_whole(
            session_factory(engine), folder.port, len(folder.uids), python_memory=False
        )
        profiler.disable()
    finally:
        await engine.dispose()
    print(f"    cProfile of the whole path on {backend} (untimed), top {top} by own time:")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats(pstats.SortKey.TIME).print_stats(top)


def describe(bag: Mailbag) -> str:
    mixed = sum(b"multipart/mixed" in raw for raw in bag.raws)
    alternative = sum(b"multipart/alternative" in raw for raw in bag.raws)
    plain = len(bag.raws) - mixed - alternative
    return (
        f"{len(bag.raws):,} messages, {bag.size / 1e6:.1f} MB ({plain:,} plain text, "
        f"{alternative:,} text+HTML, {mixed:,} with an attachment; {bag.from_known:,} from "
        f"{len(bag.known):,} contacts on cards, {bag.replies:,} replies)"
    )


async def fill(server: DovecotServer, messages: int) -> Folder:
    """Put a fresh mailbag into the server's INBOX and read back its UIDs."""
    bag = write_mailbag(messages)
    server.add_user(USER, PASSWORD)
    await server.append_many(USER, bag.raws, FOLDER)
    uids = await server.uids(USER, FOLDER)
    if len(uids) != messages:
        raise RuntimeError(f"Dovecot holds {len(uids):,} of {messages:,} messages")
    return Folder(server.port, bag, uids, await server.uidvalidity(USER, FOLDER))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--rounds", type=int, default=1, help="store only and whole path, A/B then B/A"
    )
    parser.add_argument(
        "--python-memory",
        action="store_true",
        help="then run the whole path again under tracemalloc (about 3x slower)",
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="then once more under cProfile"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="  %(levelname)s %(name)s: %(message)s")
    backends = BACKENDS if args.backend == "both" else (args.backend,)

    start = time.perf_counter()
    server = DovecotServer()
    server.start()
    sides: list[Runs] = []
    try:
        folder = await fill(server, args.messages)
        print(
            f"{describe(folder.bag)}\n  in a private Dovecot on {HOST}:{folder.port} "
            f"(ready in {time.perf_counter() - start:.1f} s); batches of {BATCH}"
        )
        parsing = parse_only(folder.bag)
        sides.append(Runs(parsing.name, [parsing]))
        print(f"  {parsing.line()}: parse_email alone, before any SQL")
        with tempfile.TemporaryDirectory(prefix="commhub-bench-imap-") as directory:
            for backend in backends:
                sides += await run_backend(backend, folder, Path(directory), args)
    finally:
        server.stop()
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"  machine load average (1/5/15 min) after the run: {load}")
    return 1 if any(side.problems for side in sides) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
