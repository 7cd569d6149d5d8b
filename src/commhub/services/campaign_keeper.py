"""The campaign keeper: every few seconds, moves each campaign along from what its rows say.

It starts scheduled campaigns whose time came, hands out the freeze of
lists still ``starting``, keeps a running campaign's outbox a little ahead
of its dispatcher (a few seconds of sending, never the whole list, so a
pause, a cancel or an unsubscribe acts on rows not yet written), pauses a
campaign whose hard bounces or complaints cross its limits, and finishes
one with nothing left to write or send. It holds no state of its own: run
it in any number of processes, or kill it at any line, and the next tick
does what is left — job ids make the work it hands out run once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.campaigns import CampaignState
from commhub.jobs.queue import JobQueue, JobQueueError
from commhub.models import Campaign, CampaignRecipient, Outbox, utcnow
from commhub.services import campaign_jobs as jobs
from commhub.services.database import Database
from commhub.store import campaign_lists as lists
from commhub.store.campaign_rows import COMPLAINED

log = logging.getLogger(__name__)

TICK_S: Final = 1.0
AHEAD_S: Final = 20.0
"""How many seconds of sending, at the campaign's rate, are written ahead of the dispatcher."""
AHEAD_MIN: Final = 200
AHEAD_MAX: Final = 5000
"""Rows written ahead for a campaign without a rate (e-mail as fast as the server takes it)."""
UNSETTLED: Final = ("queued", "sending")
BOUNCED: Final = "bounced"
FAILED: Final = "failed"
"""Refused for good by the server (a 5xx at RCPT or DATA): a hard bounce told at once."""
JUDGED: Final = ("sent", BOUNCED, FAILED, COMPLAINED)
"""Outbox states of messages handed over: the base of the bounce and complaint rates."""
MIN_SAMPLE: Final = 50


@dataclass(frozen=True, slots=True)
class Tick:
    started: int = 0
    chunks: int = 0
    finished: int = 0


async def run(
    db: Database, queue: JobQueue, *, every_s: float = TICK_S, wake: asyncio.Event | None = None
) -> None:
    """Tick forever (and at once when ``wake`` is set); a failed tick is logged, the next tries."""
    wake = wake or asyncio.Event()
    while True:
        wake.clear()
        try:
            await tick(db, queue)
        except Exception:
            log.exception("campaign keeper: a tick failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), every_s)


async def tick(db: Database, queue: JobQueue) -> Tick:
    started = await _start_due(db)
    async with db() as session:
        starting = list(
            await session.scalars(
                select(Campaign.id).where(Campaign.state == CampaignState.STARTING.value)
            )
        )
        running = list(
            await session.scalars(
                select(Campaign).where(Campaign.state == CampaignState.RUNNING.value)
            )
        )
    for campaign_id in starting:
        await _enqueue(
            queue, jobs.FREEZE_JOB, campaign_id, job_id=jobs.freeze_job_id(campaign_id, time.time())
        )
    chunks = finished = 0
    for campaign in running:
        async with db() as session:
            handed, done = await _keep_ahead(session, queue, campaign)
        chunks += handed
        finished += done
    return Tick(started=started, chunks=chunks, finished=finished)


async def _pause_if_harmful(session: AsyncSession, campaign: Campaign) -> bool:
    """Pause a campaign whose hard bounces or complaints passed its limits; whether it did.

    Judged once ``MIN_SAMPLE`` messages went out, as mailbox providers judge
    bulk senders; the reason, with the figures, is kept on the campaign.
    """
    rows = await session.execute(
        select(Outbox.state, func.count())
        .where(Outbox.campaign_id == campaign.id, Outbox.state.in_(JUDGED))
        .group_by(Outbox.state)
    )
    counts = {state: int(count) for state, count in rows}
    out = sum(counts.values())
    if out < MIN_SAMPLE:
        return False
    bounced = 100 * (counts.get(BOUNCED, 0) + counts.get(FAILED, 0)) / out
    complained = 100 * counts.get(COMPLAINED, 0) / out
    if bounced > campaign.bounce_limit:
        reason = (
            f"auto-paused: hard bounces {bounced:.1f}% of {out} sent "
            f"(limit {campaign.bounce_limit:g}%)"
        )
    elif complained > campaign.complaint_limit:
        reason = (
            f"auto-paused: complaints {complained:.2f}% of {out} sent "
            f"(limit {campaign.complaint_limit:g}%)"
        )
    else:
        return False
    moved = await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.state == CampaignState.RUNNING.value)
        .values(state=CampaignState.PAUSED.value, state_reason=reason, updated_at=utcnow())
    )
    await session.commit()
    if getattr(moved, "rowcount", 0):
        log.warning("campaign %d %s", campaign.id, reason)
    return True


async def _start_due(db: Database) -> int:
    async with db() as session:
        due = await session.scalar(
            select(func.count())
            .select_from(Campaign)
            .where(
                Campaign.state == CampaignState.SCHEDULED.value,
                Campaign.start_at <= utcnow(),
            )
        )
        if not due:
            return 0  # no write at all: an idle keeper never takes SQLite's write lock
        moved = await session.execute(
            update(Campaign)
            .where(
                Campaign.state == CampaignState.SCHEDULED.value,
                Campaign.start_at <= utcnow(),
            )
            .values(state=CampaignState.STARTING.value)
        )
        await session.commit()
        return int(getattr(moved, "rowcount", 0) or 0)


async def _keep_ahead(
    session: AsyncSession, queue: JobQueue, campaign: Campaign
) -> tuple[int, int]:
    """Hand out fill chunks until the written-ahead rows cover the next seconds; finish if done."""
    lowest = await session.scalar(
        select(func.min(CampaignRecipient.seq)).where(
            CampaignRecipient.campaign_id == campaign.id,
            CampaignRecipient.state == lists.PENDING,
        )
    )
    if lowest is None and await _finish_if_done(session, campaign.id):
        return 0, 1
    if await _pause_if_harmful(session, campaign) or lowest is None:
        return 0, 0
    horizon = utcnow() + timedelta(seconds=AHEAD_S)
    if campaign.rate and campaign.next_slot_at is not None and campaign.next_slot_at > horizon:
        return 0, 0  # paced: its slots say it is written far enough ahead
    ahead = await session.scalar(
        select(func.count())
        .select_from(Outbox)
        .where(
            Outbox.campaign_id == campaign.id,
            Outbox.state == "queued",
            Outbox.next_attempt_at <= horizon,
        )
    )
    # A gateway slower than the campaign's pace: its due rows pile up, and no more are written.
    cap = (
        AHEAD_MAX
        if not campaign.rate
        else int(min(AHEAD_MAX, max(AHEAD_MIN, campaign.rate * AHEAD_S)))
    )
    missing = cap - int(ahead or 0)
    if missing <= 0:
        return 0, 0
    count = math.ceil(missing / jobs.CHUNK)
    first = lowest // jobs.CHUNK
    for chunk in range(first, first + count):
        await _enqueue(
            queue,
            jobs.FILL_JOB,
            campaign.id,
            chunk,
            job_id=jobs.fill_job_id(campaign.id, chunk, time.time()),
        )
    return count, 0


async def _finish_if_done(session: AsyncSession, campaign_id: int) -> int:
    unsettled = await session.scalar(
        select(func.count())
        .select_from(Outbox)
        .where(Outbox.campaign_id == campaign_id, Outbox.state.in_(UNSETTLED))
    )
    if unsettled:
        return 0
    moved = await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.state == CampaignState.RUNNING.value)
        .values(state=CampaignState.FINISHED.value, finished_at=utcnow())
    )
    await session.commit()
    return int(getattr(moved, "rowcount", 0) or 0)


async def _enqueue(queue: JobQueue, name: str, *args: int, job_id: str) -> None:
    try:
        await queue.enqueue(name, *args, job_id=job_id)
    except JobQueueError as exc:
        log.warning("campaign keeper: could not queue %s: %s", job_id, exc)
