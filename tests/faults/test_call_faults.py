"""Calls across crashes: the hub killed (``kill -9``) or its PBX link cut in the middle of calls.

Each test plays calls recorded from a real Asterisk at their own pace to a real
``commhub serve`` process, kills it at a chosen moment, starts a new one on
the same database, and checks what people see afterwards: the one call record
(field by field, through the API), the missed-calls list, and the screen pops
and updates operator 201's live feed received. The recordings and the record
each must produce are described in the fixtures' README (``reconnect_mid_call``:
+7 916 555-00-11 on DID 74951234567, answered by 201, 8 s of talk;
``reconnect_while_ringing``: +7 916 555-00-22, 201 rings 9 s, then 5 s of talk).

Run alone with ``pytest -m faults``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from ami_replay import Playback
from faults.harness import (
    FaultRig,
    Frame,
    Json,
    now,
    paced,
    part2,
    recorded_gap,
    recording,
    until,
)

pytestmark = pytest.mark.faults

MID_CALL = "reconnect_mid_call"
RINGING = "reconnect_while_ringing"
DID = "74951234567"
ABSENT = "<absent>"


class Near:
    """A number within ``tolerance`` of ``value``: compares equal in a field-by-field diff."""

    def __init__(self, value: float, tolerance: float) -> None:
        self.value = value
        self.tolerance = tolerance

    def __eq__(self, other: object) -> bool:
        return isinstance(other, int | float) and abs(other - self.value) <= self.tolerance

    def __repr__(self) -> str:
        return f"{self.value}±{self.tolerance}"


class IsSet:
    """Anything but ``None`` (and not absent)."""

    def __eq__(self, other: object) -> bool:
        return other is not None and other != ABSENT

    def __repr__(self) -> str:
        return "<set>"


def fields(row: Json, *names: str) -> dict[str, Any]:
    """The named fields of a call row; ``extra.x`` reads inside ``extra``."""
    shown: dict[str, Any] = {}
    for name in names:
        if name.startswith("extra."):
            shown[name] = row["extra"].get(name.removeprefix("extra."), ABSENT)
        else:
            shown[name] = row[name]
    return shown


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


def answered_by(operator_id: int) -> Callable[[Json], bool]:
    def ready(row: Json) -> bool:
        return bool(row["status"] == "answered" and row["operator_id"] == operator_id)

    return ready


def ended(row: Json) -> bool:
    return row["ended_at"] is not None


def shown(frames: list[Frame]) -> str:
    return "\n".join(f"  {frame}" for frame in frames) or "  (none)"


async def the_ended_call(rig: FaultRig, *, timeout: float = 30.0) -> Json:
    """The one call row once it has ended, and the feed has told 201 so."""
    row = await rig.call_where(ended, "the call ended in the log")
    await _feed_shows_the_end(rig, row["external_id"], timeout)
    return row


async def _feed_shows_the_end(rig: FaultRig, call_id: str, timeout: float) -> None:
    async def seen() -> bool | None:
        frames = rig.feed.for_call(call_id)
        return any(f.type == "call.updated" and f.call.get("ended_at") for f in frames) or None

    try:
        await until(seen, "operator 201's feed showing the call ended", timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it showed:\n{shown(rig.feed.for_call(call_id))}") from None


def assert_same_call_as_recorded(rig: FaultRig, row: Json, before: Json | None) -> None:
    """The record ``reconnect_mid_call`` must produce, whatever happened in between."""
    expected: dict[str, Any] = {
        "channel": "call",
        "direction": "in",
        "status": "answered",
        "from_address": "+79165550011",
        "to_address": DID,
        "operator_id": rig.operator_ids["201"],
        "ended_at": IsSet(),
        "duration_s": Near(8, 1),
        "extra.operator_talk": {"201": Near(8, 1)},
        "extra.approximate_end_s": ABSENT,
    }
    if before is not None:
        expected |= fields(before, "answered_at", "occurred_at", "recording_ref")
    assert fields(row, *expected) == expected
    assert row["recording_ref"], "the call lost its recording (MixMonitor in part1)"


def assert_nothing_missed(missed: list[Json]) -> None:
    assert missed == [], "the call is in the missed-calls list"


def assert_pops_as_one_answered_call(rig: FaultRig, row: Json) -> None:
    """One pop, while it rang on the first hub; one end, the record's; nothing stale after
    the answer. A pop the feed sends again on connect (a "restored" one: the same pop shown
    again on a new page) may come only while the call is up, as it is then."""
    frames = rig.feed.for_call(row["external_id"])
    offers = [f for f in frames if f.type == "call.offered" and not f.restored]
    assert [(f.hub, f.call.get("status")) for f in offers] == [(1, "ringing")], (
        f"expected one call.offered, while ringing, from the first hub; 201 saw:\n{shown(frames)}"
    )
    assert_restored_pops_only_while_up(frames)
    ends = {moment(f.call["ended_at"]) for f in frames if f.call.get("ended_at")}
    assert ends == {moment(row["ended_at"])}, (
        f"call.updated frames disagree on ended_at (the record's: {row['ended_at']}):\n"
        f"{shown(frames)}"
    )
    answered = next(
        (i for i, f in enumerate(frames) if f.call.get("status") == "answered"), len(frames)
    )
    stale = [f for f in frames[answered:] if f.call.get("status") in ("ringing", "missed")]
    assert stale == [], f"frames after the answer show it ringing or missed:\n{shown(frames)}"


def assert_restored_pops_only_while_up(frames: list[Frame]) -> None:
    restored = [f for f in frames if f.type == "call.offered" and f.restored]
    assert all(
        f.call.get("status") in ("ringing", "answered") and not f.call.get("ended_at")
        for f in restored
    ), f"a pop shown again for a call that was over:\n{shown(frames)}"


# --- the part1/part2 pairs: the hub killed and started again -------------------------------------


async def test_hub_killed_mid_call_logs_the_call_once_as_answered(rig: FaultRig) -> None:
    await rig.start_hub(paced(f"{MID_CALL}.part1"))
    call_began = rig.last_login_at
    before = await rig.call_where(
        answered_by(rig.operator_ids["201"]), "the call answered by 201 before the kill"
    )
    await rig.kill_hub()
    await rig.start_hub(part2(MID_CALL, part1_login=call_began))
    await rig.recorded_lists_sent(1)

    row = await the_ended_call(rig)
    assert_same_call_as_recorded(rig, row, before)
    assert_nothing_missed(await rig.api.missed())
    assert_pops_as_one_answered_call(rig, row)


async def test_hub_killed_while_the_phone_rings_logs_one_answered_call(rig: FaultRig) -> None:
    await rig.start_hub(paced(f"{RINGING}.part1"))
    call_began = rig.last_login_at
    ringing = await rig.call_where(lambda r: r["status"] == "ringing", "the call ringing")
    call_id = ringing["external_id"]

    async def popped() -> bool | None:
        return any(f.type == "call.offered" for f in rig.feed.for_call(call_id)) or None

    await until(popped, "201's screen pop before the kill")
    await rig.kill_hub()
    await rig.start_hub(part2(RINGING, part1_login=call_began))
    await rig.recorded_lists_sent(1)

    row = await the_ended_call(rig)
    expected: dict[str, Any] = {
        "external_id": call_id,
        "direction": "in",
        "status": "answered",
        "from_address": "+79165550022",
        "to_address": DID,
        "operator_id": rig.operator_ids["201"],
        "duration_s": Near(5, 1),
    }
    assert fields(row, *expected) == expected
    assert row["answered_at"] is not None
    assert moment(row["answered_at"]) > moment(row["occurred_at"]), row
    assert_nothing_missed(await rig.api.missed())
    frames = rig.feed.for_call(call_id)
    offers = [f for f in frames if f.type == "call.offered"]
    assert [f for f in offers if f.hub == 1], f"no pop before the kill:\n{shown(frames)}"
    assert len([f for f in offers if f.hub > 1 and not f.restored]) <= 1, (
        f"more than one pop after the restart:\n{shown(frames)}"
    )
    assert_restored_pops_only_while_up(frames)
    assert {f.call.get("status") for f in offers} == {"ringing"}, (
        f"a pop for a call no longer ringing:\n{shown(frames)}"
    )


# --- the same call, other faults -----------------------------------------------------------------


async def test_a_call_that_ended_while_the_hub_was_down_is_closed_as_answered(
    rig: FaultRig,
) -> None:
    await rig.start_hub(paced(f"{MID_CALL}.part1"))
    before = await rig.call_where(
        answered_by(rig.operator_ids["201"]), "the call answered by 201 before the kill"
    )
    await rig.kill_hub()
    the_end = Playback.from_recording(recording(f"{MID_CALL}.part2"))
    await rig.pbx.play(the_end)  # to nobody: the call ends while no hub listens
    assert rig.pbx.up.channels() == [], "the PBX still lists channels of the ended call"
    await rig.start_hub()
    await rig.heard_channel_list()

    row = await the_ended_call(rig)
    expected: dict[str, Any] = {
        "direction": "in",
        "status": "answered",
        "from_address": "+79165550011",
        "to_address": DID,
        "operator_id": rig.operator_ids["201"],
        "answered_at": before["answered_at"],
        "ended_at": IsSet(),
    }
    assert fields(row, *expected) == expected
    approximate = row["extra"].get("approximate_end_s", ABSENT)
    assert isinstance(approximate, int) and approximate >= 0, row["extra"]
    assert moment(row["ended_at"]) >= moment(before["answered_at"]), row
    assert_nothing_missed(await rig.api.missed())
    frames = rig.feed.for_call(row["external_id"])
    later = [f for f in frames if f.type == "call.offered" and f.hub > 1]
    assert later == [], f"a pop after the restart:\n{shown(frames)}"

    # The PBX sends the end of the call again (a late replay): nothing changes.
    replayed = now()
    await rig.pbx.play(the_end)
    await rig.heard_events_since(replayed)
    assert await rig.the_call() == row
    frames = rig.feed.for_call(row["external_id"])
    later = [f for f in frames if f.type == "call.offered" and f.hub > 1]
    assert later == [], f"a pop after the late replay:\n{shown(frames)}"


async def test_a_call_made_and_ended_while_the_hub_was_down_leaves_no_trace(
    rig: FaultRig,
) -> None:
    await rig.start_hub()
    await rig.heard_channel_list()
    await rig.kill_hub()
    await rig.pbx.play(Playback.from_recording(recording("inbound_answered_ru_trunk_prefix")))
    assert rig.pbx.up.channels() == [], "the PBX still lists channels of the ended call"
    await rig.start_hub()
    await rig.heard_channel_list()

    assert await rig.api.calls() == []
    assert await rig.api.live_calls() == []
    assert [f for f in rig.feed.frames if f.type == "call.offered"] == []
    assert (await rig.api.pbx())["connected"] is True


async def test_the_pbx_link_cut_mid_call_logs_the_call_once_as_answered(rig: FaultRig) -> None:
    after_the_cut = paced(f"{MID_CALL}.part2")
    await rig.start_hub(paced(f"{MID_CALL}.part1", close_at_end=True), after_the_cut)
    after_the_cut.starts_at = rig.last_login_at + recorded_gap(MID_CALL)  # part1's timeline
    before = await rig.call_where(
        answered_by(rig.operator_ids["201"]), "the call answered by 201 before the cut"
    )
    await rig.pbx_logins(2)
    await rig.recorded_lists_sent(1)

    row = await the_ended_call(rig)
    assert_same_call_as_recorded(rig, row, before)
    assert_nothing_missed(await rig.api.missed())
    assert_pops_as_one_answered_call(rig, row)
    assert (await rig.api.pbx())["connected"] is True
    assert rig.hub_number == 1


async def test_two_restarts_during_one_call_log_it_once_as_answered(rig: FaultRig) -> None:
    await rig.start_hub(paced(f"{MID_CALL}.part1"))
    call_began = rig.last_login_at
    before = await rig.call_where(
        answered_by(rig.operator_ids["201"]), "the call answered by 201 before the first kill"
    )
    await rig.kill_hub()
    await rig.start_hub(part2(MID_CALL, part1_login=call_began, list_only=True))
    await rig.recorded_lists_sent(1)
    await rig.heard_channel_list()
    between = await rig.the_call()
    assert fields(between, "status", "ended_at", "operator_id") == {
        "status": "answered",
        "ended_at": None,
        "operator_id": rig.operator_ids["201"],
    }, "the second hub did not keep the call open and answered"
    await rig.kill_hub()
    await rig.start_hub(part2(MID_CALL, part1_login=call_began))
    await rig.recorded_lists_sent(2)

    row = await the_ended_call(rig)
    assert_same_call_as_recorded(rig, row, before)
    assert_nothing_missed(await rig.api.missed())
    assert_pops_as_one_answered_call(rig, row)
