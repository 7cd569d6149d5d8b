"""The replay peer itself: what a client on a raw socket gets from a recorded reconnect.

``NAME.part2.ami`` holds Asterisk's answer to the client's ``CoreShowChannels``
(ActionID ``show-1``); the peer must send it only when the client asks, under
the client's own ActionID, and then the rest of the call. These tests speak
AMI by hand over TCP, so they check the bytes the adapter would read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from ami_harness import SECRET, recording
from ami_replay import AmiReplayServer, ChannelsUp, Playback, parse_action
from commhub_asterisk.recordings import split_blocks
from commhub_asterisk.wire import END

Connect = Callable[[], Coroutine[Any, Any, "RawClient"]]


@pytest.fixture
async def connect(pbx: AmiReplayServer) -> AsyncIterator[Connect]:
    """Log a raw client in to the peer; every one is closed when the test ends."""
    opened: list[RawClient] = []

    async def login() -> RawClient:
        client = await RawClient.login(pbx)
        opened.append(client)
        return client

    yield login
    for client in opened:
        await client.close()


class RawClient:
    """An AMI client with no library: writes actions, reads messages as dicts."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.banner = b""

    @classmethod
    async def login(cls, server: AmiReplayServer, action_id: str = "login-1") -> RawClient:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        client = cls(reader, writer)
        client.banner = await reader.readline()
        client.send("Login", action_id, Username="commhub", Secret=SECRET)
        answer = await client.message()
        assert answer["Response"] == "Success" and answer["ActionID"] == action_id
        return client

    def send(self, name: str, action_id: str, **headers: str) -> None:
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def message(self, timeout: float = 5.0) -> dict[str, str]:
        raw = await asyncio.wait_for(self.reader.readuntil(END), timeout)
        return {k: str(v) for k, v in parse_action(raw).items()}

    async def messages_until(self, event: str, timeout: float = 5.0) -> list[dict[str, str]]:
        """Messages up to and including the first event named ``event``."""
        received: list[dict[str, str]] = []
        while not received or received[-1].get("Event") != event:
            received.append(await self.message(timeout))
        return received

    async def nothing_for(self, seconds: float) -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(self.reader.readuntil(END), seconds)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def first_lines(data: bytes) -> list[str]:
    """The first line of each message in ``data``, in order."""
    return [block.split(b"\r\n", 1)[0].decode() for block in split_blocks(data)]


def test_a_part2_recording_is_cut_around_its_channel_list() -> None:
    body = recording("reconnect_mid_call.part2").body
    playback = Playback.from_recording(recording("reconnect_mid_call.part2"))
    assert playback.channels_answer is not None and playback.channels_action_id == b"show-1"
    assert first_lines(playback.data) == ["Event: FullyBooted", "Event: SuccessfulAuth"]
    assert first_lines(playback.channels_answer) == [
        "Response: Success",
        *["Event: CoreShowChannel"] * 4,
        "Event: CoreShowChannelsComplete",
    ]
    [(at, rest)] = playback.rest
    assert at == 0.0 and rest.startswith(b"Event: HangupRequest")
    assert playback.data + playback.channels_answer + rest == body

    paced = Playback.from_recording(recording("reconnect_mid_call.part2"), paced=True)
    assert b"".join(data for _, data in paced.chunks) == playback.data
    assert b"".join(data for _, data in paced.rest) == rest
    assert all(2.9 < at < 3.1 for at, _ in paced.rest), paced.rest


def test_a_recording_without_a_channel_list_plays_as_before() -> None:
    whole = recording("inbound_answered_ru_trunk_prefix")
    assert Playback.from_recording(whole) == Playback(data=whole.body)
    paced = Playback.from_recording(whole, paced=True, speed=2)
    assert paced.chunks == tuple((at / 2, data) for at, data in whole.paced_body())
    assert paced.channels_answer is None and paced.rest == ()


async def test_the_recorded_list_answers_the_clients_own_action_then_the_rest_follows(
    pbx: AmiReplayServer, connect: Connect
) -> None:
    pbx.script.append(Playback.from_recording(recording("reconnect_mid_call.part2")))
    client = await connect()
    assert client.banner == b"Asterisk Call Manager/11.0.0\r\n"
    assert [m["Event"] for m in [await client.message(), await client.message()]] == [
        "FullyBooted",
        "SuccessfulAuth",
    ]
    await client.nothing_for(0.2)  # the rest waits for the client's question
    client.send("CoreShowChannels", "channels-7")
    listed = await client.messages_until("CoreShowChannelsComplete")
    assert listed[0]["Response"] == "Success" and listed[0]["EventList"] == "start"
    assert {m["ActionID"] for m in listed} == {"channels-7"}
    rows = [m for m in listed if m.get("Event") == "CoreShowChannel"]
    assert len(rows) == 4 and {row["Linkedid"] for row in rows} == {"1796340997.12"}
    assert listed[-1]["ListItems"] == "4"
    rest = await client.messages_until("Cdr")
    assert rest[0]["Event"] == "HangupRequest"
    assert pbx.recorded_lists_sent == 1


async def test_a_later_question_on_the_same_link_is_answered_from_what_is_up(
    pbx: AmiReplayServer, connect: Connect
) -> None:
    part2 = recording("reconnect_while_ringing.part2")
    pbx.script.append(Playback.from_recording(part2, paced=True))
    client = await connect()
    client.send("CoreShowChannels", "channels-1")
    first = await client.messages_until("CoreShowChannelsComplete")
    first = [m for m in first if m.get("ActionID") == "channels-1"]
    assert len(first) == 6 and first[0]["EventList"] == "start"
    # the call is still ringing: ask again before it is answered (4 s into part2)
    client.send("CoreShowChannels", "channels-2")
    again = await client.messages_until("CoreShowChannelsComplete")
    again = [m for m in again if m.get("ActionID") == "channels-2"]
    assert again[0]["Response"] == "Success" and again[-1]["ListItems"] == "4"
    recorded = {m["Uniqueid"]: m for m in first if m.get("Event") == "CoreShowChannel"}
    for row in again[1:-1]:
        assert row["Exten"] == recorded[row["Uniqueid"]]["Exten"]
        assert row["ChannelState"] == recorded[row["Uniqueid"]]["ChannelState"]
    assert pbx.recorded_lists_sent == 1


async def test_paced_the_rest_keeps_its_time_from_the_login(
    pbx: AmiReplayServer, connect: Connect
) -> None:
    part2 = recording("reconnect_mid_call.part2")
    pbx.script.append(Playback.from_recording(part2, paced=True, speed=10))
    loop = asyncio.get_running_loop()
    client = await connect()
    logged_in = loop.time()
    client.send("CoreShowChannels", "mine")
    listed = await client.messages_until("CoreShowChannelsComplete")
    assert listed[-1]["ActionID"] == "mine"
    assert loop.time() - logged_in < 0.25
    await client.messages_until("HangupRequest")
    assert loop.time() - logged_in >= 0.28  # recorded 3.0 s after the login, ten times faster


async def test_a_part2_placed_on_a_timeline_keeps_the_rest_in_its_place(
    pbx: AmiReplayServer, connect: Connect
) -> None:
    """A client back sooner than the recorded one gets the list at once, aged to that
    moment, and the rest when it happened."""
    loop = asyncio.get_running_loop()
    part2 = recording("reconnect_mid_call.part2")
    playback = Playback.from_recording(part2, paced=True, speed=10)
    playback.starts_at = loop.time() + 1.5  # the recorded client logs in 1.5 s from now
    pbx.script.append(playback)
    client = await connect()
    client.send("CoreShowChannels", "early")
    listed = await client.messages_until("CoreShowChannelsComplete")
    assert loop.time() < playback.starts_at
    rows = [m for m in listed if m.get("Event") == "CoreShowChannel"]
    assert {row["Duration"] for row in rows} == {"00:00:05"}  # recorded 00:00:07
    await client.messages_until("HangupRequest")
    assert loop.time() >= playback.starts_at + 0.29  # recorded 3 s after, ten times faster


async def test_held_logins_are_answered_when_released(
    pbx: AmiReplayServer, connect: Connect
) -> None:
    pbx.hold_logins()
    waiting = asyncio.create_task(connect())
    await pbx.wait_for_action("Login")
    done, _ = await asyncio.wait({waiting}, timeout=0.2)
    assert not done and pbx.logins == 0
    pbx.release_logins()
    await waiting
    assert pbx.logins == 1 and len(pbx.login_times) == 1


async def test_a_client_that_never_asks_gets_the_rest_without_the_list(
    pbx: AmiReplayServer, connect: Connect
) -> None:
    playback = Playback.from_recording(recording("reconnect_mid_call.part2"))
    playback.channels_wait_s = 0.3
    pbx.script.append(playback)
    client = await connect()
    received = await client.messages_until("HangupRequest")
    assert [m.get("Event") for m in received] == ["FullyBooted", "SuccessfulAuth", "HangupRequest"]
    client.send("CoreShowChannels", "late")
    late = await client.messages_until("CoreShowChannelsComplete")
    late = [m for m in late if m.get("ActionID") == "late"]
    assert late[0]["Response"] == "Success"  # the peer's own list, not the recording's
    assert pbx.recorded_lists_sent == 0


async def test_a_call_played_to_nobody_still_ends_on_the_pbx(
    pbx: AmiReplayServer, connect: Connect
) -> None:
    await pbx.send(recording("reconnect_mid_call.part1").body)
    assert len(pbx.up.channels()) == 4
    await pbx.play(Playback.from_recording(recording("reconnect_mid_call.part2")))
    assert pbx.up.channels() == []
    client = await connect()
    client.send("CoreShowChannels", "after")
    [answer, complete] = await client.messages_until("CoreShowChannelsComplete")
    assert answer["EventList"] == "start" and complete["ListItems"] == "0"


async def test_paced_play_reaches_every_client_at_the_recorded_pace(
    pbx: AmiReplayServer, connect: Connect
) -> None:
    client = await connect()
    part2 = recording("reconnect_mid_call.part2")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await pbx.play(Playback.from_recording(part2, paced=True, speed=10))
    assert loop.time() - started >= 0.28
    received = await client.messages_until("Cdr")
    assert [m.get("Event") for m in received[:3]] == [
        "FullyBooted",
        "SuccessfulAuth",
        "HangupRequest",
    ]


def test_channels_up_after_part1_are_the_rows_asterisk_listed_in_part2() -> None:
    up = ChannelsUp()
    up.follow(recording("reconnect_mid_call.part1").body)
    ours = {row["Uniqueid"]: row for row in up.channels()}
    playback = Playback.from_recording(recording("reconnect_mid_call.part2"))
    assert playback.channels_answer is not None
    real = [parse_action(block) for block in split_blocks(playback.channels_answer)]
    rows = {str(row["Uniqueid"]): row for row in real if row.get("Event") == "CoreShowChannel"}
    assert ours.keys() == rows.keys()
    for uniqueid, row in rows.items():
        expected = {k: v for k, v in row.items() if k not in ("Event", "ActionID")}
        assert set(expected) <= set(ours[uniqueid])
        # Not in the events: how long the channel lived, and the application an
        # Originate ran on the caller's half (no Newexten announces it).
        for key in ("Duration", "Application", "ApplicationData"):
            expected.pop(key)
        assert {k: ours[uniqueid][k] for k in expected} == expected


def test_a_recorded_list_tells_channels_up_what_is_up_and_for_how_long() -> None:
    now = [1000.0]
    up = ChannelsUp(clock=lambda: now[0])
    playback = Playback.from_recording(recording("reconnect_while_ringing.part2"))
    assert playback.channels_answer is not None
    up.follow(playback.channels_answer)
    now[0] += 2
    rows = up.channels()
    assert len(rows) == 4 and {row["Duration"] for row in rows} == {"00:00:07"}
    assert {row["Exten"] for row in rows} == {"74951234567", "201"}
