"""Every message sent once, or visibly not: the hub killed with ``kill -9`` at five points.

A real ``commhub serve`` queues 1,000 e-mails (aiosmtpd), 1,000 SMS through
Twilio (the Twilio-shaped API) and 1,000 through a real Kannel, and is
killed:

- ``before_claim``: everything queued by a web process that sends nothing;
- ``after_claim``: the peers hold each request before taking the message;
- ``mid_hand_over``: the peers hold each answer after taking the message;
- ``accepted_before_commit``: 3 ms after Twilio accepted its 300th message,
  before the hub's write of that answer;
- ``during_dlr``: everything sent, Twilio's status callbacks pouring in.

Then a new process starts on the same database. Counted at the peers: no
message twice, none lost; a message in doubt is listed with its reason.
A person then settles the doubts (dismiss what arrived, resend the rest),
and every message has gone exactly once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import aiohttp
import pytest

from faults.harness import RigError, until
from faults.outbox_rig import CHANNELS, OutboxRig

pytestmark = pytest.mark.faults

COUNT: Final = 1000
RATE: Final = 200
POINTS: Final = (
    "before_claim",
    "after_claim",
    "mid_hand_over",
    "accepted_before_commit",
    "during_dlr",
)
TABLE: Final = "| point | channel | sent once | duplicates | lost | uncertain |"


@pytest.fixture
async def rig(tmp_path: Path, database_url: str) -> AsyncIterator[OutboxRig]:
    redis_url = os.environ.get("COMMHUB_TEST_REDIS_URL", "")
    if not redis_url:
        pytest.skip("the crash suite's web-only process sends its jobs to Redis")
    rig = OutboxRig(tmp_path, database_url=database_url, redis_url=_private(redis_url))
    try:
        await rig.open(rate=RATE)
        yield rig
    finally:
        await rig.close()
        await _flush(rig.redis_url)
        print(rig.hub_logs()[-20000:])


def _private(redis_url: str) -> str:
    """Redis db 15: the jobs a web-only hub leaves there must reach no other test's worker."""
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    return f"{base}/15"


async def _flush(redis_url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("point", POINTS)
async def test_a_kill_at_any_point_sends_every_message_once_or_shows_it_in_doubt(
    rig: OutboxRig, point: str
) -> None:
    texts = await _crash(rig, point)
    await rig.start_hub()
    rig.smtp.release()
    rig.twilio.release()
    await rig.queue_again()
    if point == "during_dlr":
        await _report_again(rig)
    await rig.settled()

    tallies = await rig.tally(texts)
    print(f"\nafter the restart ({point}):\n{TABLE}")
    print("\n".join(t.row(point) for t in tallies))
    for tally in tallies:
        assert tally.duplicates == 0, tally
        assert tally.lost == 0, tally
        assert tally.sent_once + tally.uncertain - tally.uncertain_delivered == COUNT, tally
    assert not await rig.outbox("failed")

    await _settle_doubts_as_a_person(rig)
    await rig.settled()
    for tally in await rig.tally(texts):
        assert (tally.sent_once, tally.duplicates, tally.uncertain) == (COUNT, 0, 0), tally
    if point == "during_dlr":
        await _every_twilio_message_delivered(rig)


async def _crash(rig: OutboxRig, point: str) -> dict[str, list[str]]:
    """Queue the messages and kill the hub at ``point``; the texts queued, by channel."""
    if point == "before_claim":
        await rig.start_hub(sending=False)
        texts = await rig.queue(COUNT)
        await rig.kill_hub()
        assert all(not rig.received(c) for c in CHANNELS), "a web-only process sent something"
        return texts
    await rig.start_hub()
    if point in ("after_claim", "mid_hand_over"):
        hold = "before" if point == "after_claim" else "after"
        rig.smtp.hold = rig.twilio.hold = hold
        texts = await rig.queue(COUNT)

        async def holding() -> bool | None:
            return True if rig.smtp.held and rig.twilio.held >= 5 else None

        await until(holding, "the peers holding hand-overs")
        await rig.kill_hub()
        return texts
    if point == "accepted_before_commit":
        rig.twilio.kill_at = 300
        texts = await rig.queue(COUNT)
        await rig.wait_killed()
        return texts
    texts = await rig.queue(COUNT)
    await _all_arrived(rig)
    await _reports_while_killed(rig)
    return texts


async def _all_arrived(rig: OutboxRig) -> None:
    async def arrived() -> bool | None:
        return True if all(len(rig.received(c)) >= COUNT for c in CHANNELS) else None

    await until(arrived, "every message at its peer", timeout=120)
    await rig.settled()


async def _reports_while_killed(rig: OutboxRig) -> None:
    """Twilio reports every message delivered, 20 at a time; the hub dies a third of the way."""
    sids = list(rig.twilio.messages)
    acknowledged: list[str] = []
    rig.acknowledged = acknowledged  # type: ignore[attr-defined]
    slots = asyncio.Semaphore(20)

    async def report(sid: str) -> None:
        async with slots:
            try:
                status, _ = await rig.twilio.report(sid, "delivered")
            except (OSError, aiohttp.ClientError):
                return  # the hub is gone: Twilio would report again later
            if status == 200:
                acknowledged.append(sid)
                if len(acknowledged) == len(sids) // 3:
                    rig.kill_now()

    await asyncio.gather(*(report(sid) for sid in sids))
    await rig.wait_killed()


async def _report_again(rig: OutboxRig) -> None:
    """What Twilio does with callbacks that failed: send them again to the new process."""
    acknowledged = set(getattr(rig, "acknowledged", []))
    for sid in rig.twilio.messages:
        if sid not in acknowledged:
            status, said = await rig.twilio.report(sid, "delivered")
            if status != 200:
                raise RigError(f"report for {sid}: {status} {said}")


async def _settle_doubts_as_a_person(rig: OutboxRig) -> None:
    """Dismiss a doubt whose message reached its peer; resend the others."""
    for row in await rig.outbox("uncertain"):
        channel = "email" if row["source"] == "sales" else row["source"]
        text = str(row["key"]).split(":", 2)[-1]
        action = "dismiss" if text in rig.received(channel) else "resend"
        status, answer = await rig.request("POST", f"/api/v1/outbox/{row['id']}/{action}")
        assert status == 200, answer


async def _every_twilio_message_delivered(rig: OutboxRig) -> None:
    delivered = 0
    for row in await rig.outbox("sent"):
        if row["source"] != "twilio":
            continue
        status, sms = await rig.request("GET", f"/api/v1/sms/{row['interaction_id']}")
        assert status == 200, sms
        delivered += sms["status"] == "delivered"
    assert delivered == COUNT


@pytest.mark.timeout(600)
async def test_a_clean_stop_mid_send_leaves_nothing_in_doubt(rig: OutboxRig) -> None:
    """Stopped as a user stops it (Ctrl-C) while it sends: what it had claimed ahead and not
    handed over goes back to the queue, what was in flight is written, and the next process
    sends the rest; no person has anything to settle."""
    await rig.start_hub(sending=False)  # the whole backlog queued before anything is sent
    texts = await rig.queue(COUNT)
    await rig.stop_hub()
    await rig.start_hub()

    async def sending() -> bool | None:
        return True if len(rig.received("twilio")) >= 200 else None

    await until(sending, "Twilio taking messages")
    await rig.stop_hub()
    assert len(rig.received("twilio")) < COUNT, "all sent before the stop: the test saw nothing"

    await rig.start_hub()
    await rig.queue_again()
    await _all_arrived(rig)
    for tally in await rig.tally(texts):
        assert (tally.sent_once, tally.duplicates, tally.uncertain) == (COUNT, 0, 0), tally
    assert not await rig.outbox("failed")
