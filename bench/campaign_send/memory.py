"""Peak memory of an arq worker running a campaign to a million people.

    .venv/bin/python bench/campaign_send/memory.py                     # 1,000,000 people, SQLite
    .venv/bin/python bench/campaign_send/memory.py --people 100000     # a quick look
    .venv/bin/python bench/campaign_send/memory.py --backend postgres

A real ``commhub worker`` (its own process, arq on Redis db 9) freezes the
list of an SMS campaign to ``--people`` contacts and writes every message
(card entry, SMS row, outbox row), handed its jobs by the real keeper
(``services.campaign_keeper.tick``) running here. Nothing is sent: this
process plays the dispatcher's part by marking the written rows ``sent``
in bulk, so the keeper keeps the worker writing, as it would behind a
gateway, without a gateway's pace stretching the run to hours.

Printed: the worker's peak resident memory (``VmHWM`` from /proc) at the end,
beside its resident memory once started and idle (the baseline: the
interpreter, SQLAlchemy, the hub's modules); the people per second it froze
and wrote. Target: peak ≤ 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from sqlalchemy import update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audience import load_people

from commhub.domain.campaigns import CampaignChannel
from commhub.jobs.arq_queue import ArqJobs
from commhub.models import (
    Campaign,
    MessageTemplate,
    Outbox,
    utcnow,
)
from commhub.services import campaign_keeper, campaigns
from commhub.services.campaign_jobs import campaign_fill, campaign_freeze
from commhub.services.campaigns import CampaignDraft, Senders
from commhub.store.engine import open_engine, session_factory
from commhub.store.migrate import upgrade
from databases import bench_database, recreate

REDIS = os.environ.get("COMMHUB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
CHUNK = 20_000


def midday_zone() -> str:
    """A zone where it is about noon now: every recipient's window is open for the run."""
    offset = (12 - time.gmtime().tm_hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()

    database = bench_database("campaign_memory", args.backend, args.people)
    await recreate(database)
    engine = open_engine(database.url)
    await upgrade(engine)
    began = time.perf_counter()
    segment_id = await load_people(
        engine, args.people, channel="sms", address=lambda n: f"+7916{n:07d}"
    )
    print(f"loaded {args.people:,} people in {time.perf_counter() - began:.0f} s ({database.url})")
    db = session_factory(engine)
    async with db() as session:
        template = MessageTemplate(
            name="Sale", channel="sms", text="{{ contact.first_name }}, скидка 10% до пятницы"
        )
        session.add(template)
        await session.commit()
        template_id = template.id
    campaign = await campaigns.create(
        db,
        CampaignDraft(
            name="Memory",
            channel=CampaignChannel.SMS,
            segment_id=segment_id,
            sms_template_id=template_id,
            sms_gateway="bench",
            window_from=8 * 60,
            window_to=22 * 60,
        ),
        user_id=None,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMHUB_")}
    env |= {
        "COMMHUB_DATABASE_URL": database.url,
        "COMMHUB_REDIS_URL": REDIS,
        "COMMHUB_TIME_ZONE": midday_zone(),
    }
    queue = ArqJobs(redis_url=REDIS, functions=[campaign_freeze, campaign_fill])
    await queue.start()
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "commhub", "worker", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(5)
    idle = kib(worker.pid, "VmRSS")
    await campaigns.start(
        db, campaign.id, Senders(mailboxes={}, sms_gateways={"bench": ("+1500",)})
    )
    began = time.perf_counter()
    frozen_at = 0.0
    try:
        while True:
            await campaign_keeper.tick(db, queue)
            async with db() as session:
                await session.execute(
                    update(Outbox)
                    .where(Outbox.campaign_id == campaign.id, Outbox.state == "queued")
                    .values(state="sent", sent_at=utcnow())
                )
                await session.commit()
                row = await session.get(Campaign, campaign.id, populate_existing=True)
                state = row.state if row is not None else "gone"
            if state == "running" and not frozen_at:
                frozen_at = time.perf_counter() - began
            if state == "finished":
                break
            await asyncio.sleep(0.5)
        took = time.perf_counter() - began
        peak = kib(worker.pid, "VmHWM")
    finally:
        worker.terminate()
        await worker.wait()
        await queue.close()
        await engine.dispose()
    print(
        f"worker resident memory: idle {idle / 1024:.0f} MB (baseline) | peak over the campaign "
        f"{peak / 1024:.0f} MB | growth {(peak - idle) / 1024:.0f} MB | ratio {peak / idle:.2f} "
        f"(target peak <= 200 MB: {'PASS' if peak <= 200 * 1024 else 'FAIL'})"
    )
    print(
        f"{args.people:,} people: list frozen in {frozen_at:.0f} s, every message written in "
        f"{took:.0f} s ({args.people / took:,.0f}/s, one worker)"
    )


if __name__ == "__main__":
    asyncio.run(main())
