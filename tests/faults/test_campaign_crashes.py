"""A campaign killed everywhere, still exactly one message per person.

A 20,000-recipient e-mail campaign runs through a real ``commhub serve``
(the listener: dispatcher and keeper) and two real arq workers (the freeze
and the writing of messages), against aiosmtpd. A worker is killed with
SIGKILL at ten random moments (and started again), the whole hub twice;
in the second run the marketer also pauses and resumes it midway. Messages
a hub kill left in doubt are settled as a person would (dismiss what
arrived, resend the rest). Then every recipient has exactly one message at
the server, and nobody outside the list has any.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import pytest

from faults.campaign_rig import CampaignRig, expected

pytestmark = pytest.mark.faults

PEOPLE: Final = int(os.environ.get("COMMHUB_CRASH_CAMPAIGN_PEOPLE", "20000"))
WORKERS: Final = 2


@pytest.fixture
async def rig(tmp_path: Path, database_url: str) -> AsyncIterator[CampaignRig]:
    redis_url = os.environ.get("COMMHUB_TEST_REDIS_URL", "")
    if not redis_url:
        pytest.fail("the campaign crash suite runs real arq workers: set COMMHUB_TEST_REDIS_URL")
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    rig = CampaignRig(tmp_path, database_url=database_url, redis_url=f"{base}/14")
    await _flush(rig.redis_url)
    try:
        yield rig
    finally:
        await rig.close()
        await _flush(rig.redis_url)
        print(rig.logs()[-30000:])


async def _flush(redis_url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def _havoc(rig: CampaignRig, campaign_id: int, *, seed: int, pause: bool) -> None:
    """Ten worker kills at random moments, two hub kills, and a pause/resume if asked."""
    chance = random.Random(seed)
    moments = sorted(chance.uniform(0.2, 12.0) for _ in range(10))
    hub_kills = {3, 7}
    elapsed = 0.0
    for n, moment in enumerate(moments):
        await asyncio.sleep(moment - elapsed)
        elapsed = moment
        slot = chance.randrange(WORKERS)
        await rig.workers.kill(slot)
        await rig.workers.start(slot)
        if n in hub_kills:
            await rig.hub.kill()
            await rig.start_hub()
        if pause and n == 5:
            while (await rig.shown(campaign_id))["state"] == "starting":
                await asyncio.sleep(0.2)  # a list still being frozen cannot be paused yet
            status, said = await rig.request(
                "POST", f"/api/v1/campaigns/{campaign_id}/pause", json={}
            )
            assert status == 200, said
            await asyncio.sleep(1.0)
            status, _ = await rig.request("POST", f"/api/v1/campaigns/{campaign_id}/resume")
            assert status == 200


@pytest.mark.timeout(900)
@pytest.mark.parametrize("pause", [False, True], ids=["kills", "kills+pause"])
async def test_workers_and_the_hub_killed_at_random_still_one_message_each(
    rig: CampaignRig, pause: bool
) -> None:
    segment_id = await rig.open(people=PEOPLE, workers=WORKERS)
    campaign_id = await rig.campaign(segment_id)
    await _havoc(rig, campaign_id, seed=19 + int(pause), pause=pause)
    done = await rig.finished(campaign_id)

    copies = rig.copies()
    wanted = set(expected(PEOPLE))
    twice = {address: n for address, n in copies.items() if n > 1}
    missing = wanted - set(copies)
    strangers = set(copies) - wanted
    assert not twice, f"{len(twice)} got more than one: {sorted(twice.items())[:5]}"
    assert not missing, f"{len(missing)} got nothing: {sorted(missing)[:5]}"
    assert not strangers
    assert rig.workers.killed >= 10
    assert done["counts"]["recipients"] == PEOPLE
    # A message a hub kill left in doubt that had arrived was dismissed by the person.
    assert done["counts"]["sent"] + done["counts"]["dismissed"] == PEOPLE
