"""An e-mail campaign through the whole hub beside a bare aiosmtplib loop, to the same sink.

    .venv/bin/python bench/campaign_send/run.py                         # 100,000 people, SQLite
    .venv/bin/python bench/campaign_send/run.py --people 10000 --connections 2
    .venv/bin/python bench/campaign_send/run.py --backend postgres --workers 4 --connections 4

The sink is aiosmtpd in its own process (``bench/smtp_send``'s counting sink:
it accepts everything and counts connections, messages, bytes).

- **campaign**: a hub (``open_hub``) with one mailbox of ``--connections`` SMTP
  connections; ``--people`` contacts with marketing consent on a static list;
  a campaign started through the service. Timed from the start to the last
  message at the sink: freezing the list, writing every message (the keeper,
  fill jobs — in this process, or on ``--workers`` arq workers on Redis), and
  the one dispatcher sending them.
- **bare**: the same number of messages, built beforehand with the same composer
  (``domain/campaign_mail``), sent by ``--connections`` plain aiosmtplib
  connections in parallel, one ``sendmail`` after the other on each.

Printed: messages/s of both and the ratio. Targets (issue 19): ≥ 80 % of the
bare rate with the same connections; ≥ 1,000 e-mails/s with PostgreSQL, Redis
and 4 workers (run once with ``--workers 1`` beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "smtp_send"))

import aiosmtplib
from audience import load_people
from run import Sink  # bench/smtp_send/run.py
from sqlalchemy import insert

from commhub.bootstrap import open_hub
from commhub.channels import ChannelContext
from commhub.config import Settings
from commhub.domain.campaign_mail import Letterhead, letter
from commhub.models import (
    MessageTemplate,
)
from commhub.services import campaigns
from commhub.services.campaigns import CampaignDraft, Senders
from commhub.store.engine import open_engine
from commhub.store.migrate import upgrade
from commhub_email import adapter
from databases import bench_database, recreate

SENDER = "news@example.com"
SUBJECT = "Скидка 10% для вас, {{ contact.first_name }}"
TEXT = (
    "Здравствуйте, {{ contact.name }}!\n\nТолько до пятницы — скидка 10% на всё.\n"
    "Ваш менеджер: {{ owner.name | default('отдел продаж') }}.\n\n"
    "Отписаться: {{ unsubscribe_url }}\n"
)
HTML = (
    "<p>Здравствуйте, <b>{{ contact.name }}</b>!</p><p>Только до пятницы — скидка 10%.</p>"
    "<p><a href='{{ unsubscribe_url }}'>Отписаться</a></p>"
)
REDIS = os.environ.get("COMMHUB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")


def midday_zone() -> str:
    offset = (12 - time.gmtime().tm_hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


async def load(url: str, people: int) -> tuple[int, int]:
    engine = open_engine(url)
    await upgrade(engine)
    try:
        segment = await load_people(
            engine, people, channel="email", address=lambda n: f"c{n}@client.example"
        )
        async with engine.begin() as connection:
            template = (
                await connection.execute(
                    insert(MessageTemplate)
                    .values(
                        name="Sale",
                        channel="email",
                        language="ru",
                        subject=SUBJECT,
                        text=TEXT,
                        html=HTML,
                    )
                    .returning(MessageTemplate.id)
                )
            ).scalar_one()
        return segment, int(template)
    finally:
        await engine.dispose()


async def through_campaign(args: argparse.Namespace, sink: Sink) -> float:
    database = bench_database("campaign_send", args.backend, args.people)
    await recreate(database)
    segment_id, template_id = await load(database.url, args.people)
    folder = Path(tempfile.mkdtemp(prefix="commhub-campaign-send-"))
    settings = Settings(
        data_dir=folder,
        database_url=database.url,
        redis_url=REDIS if args.workers else "",
        phone_region="RU",
        time_zone=midday_zone(),
        public_url="https://hub.example",
        _env_file=None,  # type: ignore[call-arg]
    )
    mailbox = adapter(
        name="news",
        options={
            "address": SENDER,
            "display_name": "Новости",
            "smtp": {
                "host": "127.0.0.1",
                "port": sink.port,
                "security": "plain",
                "connections": args.connections,
            },
        },
        context=ChannelContext(phone_region="RU"),
    )
    workers: list[asyncio.subprocess.Process] = []
    if args.workers:
        from redis.asyncio import Redis

        redis = Redis.from_url(REDIS)
        await redis.flushdb()
        await redis.aclose()
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMMHUB_")}
        env |= {
            "COMMHUB_DATABASE_URL": database.url,
            "COMMHUB_REDIS_URL": REDIS,
            "COMMHUB_TIME_ZONE": settings.time_zone,
            "COMMHUB_PUBLIC_URL": settings.public_url,
        }
        for _ in range(args.workers):
            workers.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "commhub",
                    "worker",
                    env=env,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
            )
    hub = await open_hub(settings, channels=[mailbox])
    try:
        row = await campaigns.create(
            hub.sessions,
            CampaignDraft(
                name="Bench",
                segment_id=segment_id,
                email_template_id=template_id,
                mailbox="news",
                window_from=8 * 60,
                window_to=22 * 60,
            ),
            user_id=None,
        )
        before = sink.counts().messages
        began = time.perf_counter()
        await campaigns.start(
            hub.sessions, row.id, Senders(mailboxes={"news": (SENDER, "Новости")}, sms_gateways={})
        )
        while sink.counts().messages - before < args.people:
            await asyncio.sleep(0.2)
        return time.perf_counter() - began
    finally:
        await hub.close()
        for worker in workers:
            worker.terminate()
            await worker.wait()


async def bare(args: argparse.Namespace, sink: Sink) -> float:
    head = Letterhead.of(SENDER, "Новости")
    now = datetime.now(UTC)
    built = [
        letter(
            head,
            to=f"c{n}@client.example",
            to_name=f"Клиент {n}",
            subject=f"Скидка 10% для вас, Клиент {n}",
            text=TEXT.replace("{{ contact.name }}", f"Клиент {n}"),
            html=HTML.replace("{{ contact.name }}", f"Клиент {n}"),
            now=now,
            unsubscribe=(f"https://hub.example/u/{n:022d}",),
        )
        for n in range(args.people)
    ]

    async def one_connection(share: list[Any]) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, start_tls=False)
        await client.connect()
        try:
            for made in share:
                await client.sendmail(SENDER, [made.to], made.raw)
        finally:
            await client.quit()

    shares = [
        [
            Prebuilt(f"c{n}@client.example", built[n].raw)
            for n in range(k, args.people, args.connections)
        ]
        for k in range(args.connections)
    ]
    began = time.perf_counter()
    await asyncio.gather(*(one_connection(share) for share in shares))
    return time.perf_counter() - began


class Prebuilt:
    __slots__ = ("raw", "to")

    def __init__(self, to: str, raw: bytes) -> None:
        self.to = to
        self.raw = raw


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workers", type=int, default=0, help="arq workers (0: in-process jobs)")
    args = parser.parse_args()
    sink = Sink()
    sink.start()
    try:
        bare_s = await bare(args, sink)
        campaign_s = await through_campaign(args, sink)
    finally:
        sink.stop()
    bare_rate = args.people / bare_s
    rate = args.people / campaign_s
    jobs = f"{args.workers} arq workers" if args.workers else "in-process jobs"
    print(
        f"{args.people:,} e-mails, {args.connections} SMTP connection(s), {args.backend}, {jobs}: "
        f"campaign {rate:,.0f} msg/s ({campaign_s:.1f} s, list frozen and every message written "
        f"and sent) | bare aiosmtplib {bare_rate:,.0f} msg/s ({bare_s:.1f} s, prebuilt) | "
        f"ratio {rate / bare_rate:.2f} "
        f"(target >= 0.80: {'PASS' if rate >= 0.8 * bare_rate else 'FAIL'})"
    )


if __name__ == "__main__":
    asyncio.run(main())
