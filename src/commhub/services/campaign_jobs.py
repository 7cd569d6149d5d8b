"""The two jobs of a campaign: freeze its recipient list, then write its messages chunk by chunk.

Both run on the arq workers in production (any number, sharing the work)
and in the hub's process on the embedded default; both may be killed at any
line and run again. The freeze resumes after the last contact it wrote.
A fill job owns a range of the list (``CHUNK`` recipients by ``seq``): in
one transaction it renders each pending recipient's message, writes the
card entry and the outbox row, and marks the recipient ``queued`` — so a
recipient has its one outbox row or none, and the unique key on
(campaign, contact, channel) turns a second writer's attempt into an error
rather than a second message.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.campaigns import (
    CampaignChannel,
    CampaignState,
    Exclusion,
    Pace,
    choose,
)
from commhub.models import Campaign, CampaignRecipient, Contact, utcnow
from commhub.services import campaign_messages
from commhub.services.database import Database
from commhub.store import campaign_lists as lists

log = logging.getLogger(__name__)

FREEZE_JOB: Final = "campaign_freeze"
FILL_JOB: Final = "campaign_fill"
FREEZE_CHUNK: Final = 2000
CHUNK: Final = 500
"""Recipients one fill job writes, in one transaction."""


RETRY_AFTER_S: Final = 15
"""A job id names its work and a 15-second window: work still not done a window later gets a
new job, so a worker killed mid-job (whose job arq keeps "in progress" until its timeout)
holds nothing up; a second job on the same work finds it done or locked."""


def freeze_job_id(campaign_id: int, now: float) -> str:
    return f"campaign:{campaign_id}:freeze:{int(now // RETRY_AFTER_S)}"


def fill_job_id(campaign_id: int, chunk: int, now: float) -> str:
    return f"campaign:{campaign_id}:fill:{chunk}:{int(now // RETRY_AFTER_S)}"


async def campaign_freeze(ctx: dict[str, Any], campaign_id: int) -> int:
    """Freeze the campaign's list from its segment, then let it run. How many were frozen."""
    return await freeze(ctx["sessions"], campaign_id)


async def campaign_fill(ctx: dict[str, Any], campaign_id: int, chunk: int) -> int:
    """Write the messages of one chunk of the list. How many were written."""
    return await fill(
        ctx["sessions"],
        campaign_id,
        chunk,
        public_url=ctx["settings"].public_url,
        zone=ctx["settings"].time_zone,
    )


async def freeze(db: Database, campaign_id: int) -> int:
    """Write the recipient list in chunks; once whole, ``starting`` becomes ``running``."""
    written = 0
    while True:
        async with db() as session:
            # Freezes of one campaign take turns (two workers on it write the same contacts).
            campaign = await session.get(Campaign, campaign_id, with_for_update=True)
            if campaign is None or campaign.state != CampaignState.STARTING.value:
                return written
            members = await lists.members_of(session, campaign.segment_id)
            after = await lists.frozen_through(session, campaign_id)
            ids = await lists.next_members(session, members, after=after, limit=FREEZE_CHUNK)
            if not ids:
                await _running(session, campaign_id)
                return written
            await _freeze_chunk(session, campaign, ids)
            await session.commit()
            written += len(ids)


async def _freeze_chunk(session: AsyncSession, campaign: Campaign, ids: list[int]) -> None:
    people = await lists.people(session, ids, campaign.purpose)
    choices = [choose(CampaignChannel(campaign.channel), campaign.purpose, p) for p in people]
    taken = await lists.addresses_taken(
        session, campaign.id, [c.address for c in choices if c.exclusion is None]
    )
    rows: list[dict[str, Any]] = []
    excluded = 0
    for person, choice in zip(people, choices, strict=True):
        reason = choice.exclusion
        if reason is None and choice.address in taken:
            reason = Exclusion.SAME_ADDRESS
        if reason is None:
            taken.add(choice.address)
        else:
            excluded += 1
        rows.append(
            {
                "contact_id": person.contact_id,
                "channel": choice.channel,
                "address": choice.address,
                "state": lists.PENDING if reason is None else lists.EXCLUDED,
                "reason": "" if reason is None else reason.value,
            }
        )
    await lists.add(session, campaign.id, rows, excluded=excluded)


async def _running(session: AsyncSession, campaign_id: int) -> None:
    now = utcnow()
    await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.state == CampaignState.STARTING.value)
        .values(state=CampaignState.RUNNING.value, started_at=now, next_slot_at=now)
    )
    await session.commit()


async def fill(db: Database, campaign_id: int, chunk: int, *, public_url: str, zone: str) -> int:
    """Write the outbox rows of the pending recipients in ``chunk``; one transaction.

    On SQLite (no row locks) a second job on the chunk, started while the first
    was still writing, meets the unique key when the first commits: if nothing
    of the chunk is pending any more, the work was done and this job did none.
    """
    # One fill per chunk at a time in this process: the keeper hands a chunk out again after
    # RETRY_AFTER_S, and the in-process runner may start it beside a first try still writing.
    key = (campaign_id, chunk)
    lock, users = _CHUNK_LOCKS.get(key, (asyncio.Lock(), 0))
    _CHUNK_LOCKS[key] = (lock, users + 1)
    try:
        async with lock:
            return await _fill_once(db, campaign_id, chunk, public_url=public_url, zone=zone)
    finally:
        lock, users = _CHUNK_LOCKS[key]
        if users == 1:
            del _CHUNK_LOCKS[key]
        else:
            _CHUNK_LOCKS[key] = (lock, users - 1)


_CHUNK_LOCKS: dict[tuple[int, int], tuple[asyncio.Lock, int]] = {}
"""A lock per chunk being filled here, with how many jobs hold or wait for it."""


async def _fill_once(
    db: Database, campaign_id: int, chunk: int, *, public_url: str, zone: str
) -> int:
    try:
        return await _fill(db, campaign_id, chunk, public_url=public_url, zone=zone)
    except IntegrityError:
        async with db() as session:
            if await _pending(session, campaign_id, chunk):
                raise
        log.info("campaign %d: chunk %d was written by another job", campaign_id, chunk)
        return 0


async def _fill(db: Database, campaign_id: int, chunk: int, *, public_url: str, zone: str) -> int:
    async with db() as session:
        campaign = await session.get(Campaign, campaign_id)
        if (
            campaign is not None
            and campaign.rate
            and session.get_bind().dialect.name == "postgresql"
        ):
            # Paced: fills of one campaign take turns, so two never hand out the same slots.
            campaign = await session.get(
                Campaign, campaign_id, with_for_update=True, populate_existing=True
            )
        if campaign is None or campaign.state != CampaignState.RUNNING.value:
            return 0
        pending = await _pending(session, campaign_id, chunk)
        if not pending:
            return 0
        contacts = {
            c.id: c
            for c in await session.scalars(
                select(Contact).where(Contact.id.in_([r.contact_id for r in pending]))
            )
        }
        pace = Pace(campaign.next_slot_at or utcnow(), campaign.rate)
        written = await campaign_messages.write(
            session,
            campaign,
            pending,
            contacts,
            pace=pace,
            public_url=public_url,
            zone=zone,
        )
        await session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(next_slot_at=_later(campaign.next_slot_at, pace.next_slot))
        )
        await session.commit()
        return written


def _later(before: datetime | None, after: datetime) -> datetime:
    return after if before is None else max(before, after)


async def _pending(session: AsyncSession, campaign_id: int, chunk: int) -> list[CampaignRecipient]:
    query = (
        select(CampaignRecipient)
        .where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.state == lists.PENDING,
            CampaignRecipient.seq >= chunk * CHUNK,
            CampaignRecipient.seq < (chunk + 1) * CHUNK,
        )
        .order_by(CampaignRecipient.seq)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Two workers given the same chunk (a retry beside a slow first try): the
        # second skips the rows the first holds instead of waiting to fail on them.
        query = query.with_for_update(skip_locked=True)
    return list(await session.scalars(query))
