"""The Asterisk channel end to end: a loopback AMI server plays the recorded streams.

The hub runs as in production (app, inbound path, the adapter's real AMI
link over TCP); only the PBX is a replay of what a real Asterisk sent. Each
test asserts what a user sees: rows in the interaction log, screen pops on
the WebSocket, missed calls, click-to-call requests, channel health.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

import ami_harness
from ami_harness import SECRET, recording, settle
from ami_replay import AmiReplayServer, Playback
from app_fixtures import log_in
from commhub.bootstrap import Hub, open_hub
from commhub.channels import ChannelContext
from commhub.config import Settings
from commhub.domain.contacts import ContactDraft
from commhub.domain.phones import parse_phone
from commhub.domain.roles import Role
from commhub.models import Interaction, User
from commhub.services import contacts
from commhub.store.engine import SessionFactory
from commhub.web.app import create_app
from commhub_asterisk import AmiChannel, adapter
from commhub_asterisk.recordings import scale_burst, split_blocks

BRIDGE = "ab7dcd6a-7aa6-4c57-9457-286edf0cc787"
"""The bridge of ``inbound_answered_ru_trunk_prefix``'s caller and 201."""
Client = TestClient[Any, Any]


@pytest.fixture
async def ivan(sessions: SessionFactory, accounts: dict[Role, Any]) -> int:
    """The customer of most recordings: +7 916 123-45-67."""
    view = await contacts.create_contact(
        sessions,
        ContactDraft(name="Ivan Petrov", phones=(parse_phone("+79161234567", "RU"),)),
        owner_id=None,
        source="test",
    )
    return view.id


def pbx_options(server: AmiReplayServer, **overrides: Any) -> dict[str, Any]:
    return ami_harness.pbx_options(server, **{"secret": SECRET, **overrides})


HubClient = Callable[..., Awaitable[tuple[Client, Hub]]]


@pytest.fixture
def hub_client(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    accounts: dict[Role, Any],
    pbx: AmiReplayServer,
) -> HubClient:
    """Start the hub with one PBX pointed at the replay server."""

    async def start(**overrides: Any) -> tuple[Client, Hub]:
        return await ami_harness.hub_with_pbx(aiohttp_client, settings, pbx, **overrides)

    return start


async def log_rows(client: Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/interactions?channel=call", headers=headers)
    assert response.status == 200, await response.text()
    return list((await response.json())["items"])


@pytest.mark.parametrize("paced", [False, True], ids=["all-at-once", "paced"])
async def test_answered_call_lands_on_the_card_once(
    hub_client: HubClient,
    pbx: AmiReplayServer,
    ivan: int,
    accounts: dict[Role, Any],
    paced: bool,
) -> None:
    pbx.script.append(
        Playback.from_recording(recording("inbound_answered_ru_trunk_prefix"), paced=paced)
    )
    client, hub = await hub_client()
    await settle(hub, calls=1)
    [row] = await log_rows(client, accounts[Role.MANAGER].auth)
    assert row["contact_id"] == ivan
    assert row["direction"] == "in" and row["status"] == "answered"
    assert row["duration_s"] == 8
    talk = datetime.fromisoformat(row["ended_at"]) - datetime.fromisoformat(row["answered_at"])
    assert abs(talk.total_seconds() - 8) <= 1
    assert row["from_address"] == "+79161234567" and row["to_address"] == "74951234567"
    assert row["recording_ref"].endswith("1795376470.1.wav")
    operator = await client.get("/api/v1/auth/me", headers=accounts[Role.OPERATOR].auth)
    assert row["operator_id"] == (await operator.json())["user"]["id"]


@pytest.mark.parametrize(
    ("name", "status", "duration", "extra"),
    [
        ("inbound_missed_no_answer", "missed", 0, {"reason": "no answer"}),
        ("inbound_queue_answered", "answered", 6, {"queue_wait_s": 2, "wait_s": 3}),
        ("inbound_answered_gb_national", "answered", 5, {}),
        ("inbound_anonymous", "answered", 4, {}),
    ],
)
async def test_every_recorded_outcome_is_logged(
    hub_client: HubClient,
    pbx: AmiReplayServer,
    accounts: dict[Role, Any],
    name: str,
    status: str,
    duration: int,
    extra: dict[str, Any],
) -> None:
    pbx.script.append(Playback.from_recording(recording(name)))
    client, hub = await hub_client()
    await settle(hub, calls=1)
    [row] = await log_rows(client, accounts[Role.MANAGER].auth)
    assert row["status"] == status and row["duration_s"] == duration
    assert extra.items() <= row["extra"].items()


async def test_gb_number_without_country_code_is_read_in_the_trunks_region(
    hub_client: HubClient, pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    pbx.script.append(Playback.from_recording(recording("inbound_answered_gb_national")))
    client, hub = await hub_client(region="GB")
    await settle(hub, calls=1)
    [row] = await log_rows(client, accounts[Role.MANAGER].auth)
    assert row["from_address"] == "+442079460958"


async def test_missed_call_waits_in_the_follow_up_list_until_dismissed(
    hub_client: HubClient, pbx: AmiReplayServer, ivan: int, accounts: dict[Role, Any]
) -> None:
    pbx.script.append(Playback.from_recording(recording("inbound_missed_no_answer")))
    client, hub = await hub_client()
    await settle(hub, calls=1)
    operator = accounts[Role.OPERATOR].auth
    listed = await (await client.get("/api/v1/calls/missed", headers=operator)).json()
    [missed] = listed["items"]
    assert missed["contact_id"] == ivan and missed["number"] == "+79161234567"
    assert missed["call"]["status"] == "missed"
    dismissed = await client.post(f"/api/v1/calls/missed/{missed['id']}/dismiss", headers=operator)
    assert dismissed.status == 200 and (await dismissed.json())["state"] == "dismissed"
    after = await (await client.get("/api/v1/calls/missed", headers=operator)).json()
    assert after["items"] == []


async def test_a_later_answered_call_from_the_number_closes_the_missed_call(
    hub_client: HubClient, pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    pbx.script.append(Playback.from_recording(recording("inbound_missed_no_answer")))
    client, hub = await hub_client()
    await settle(hub, calls=1)
    await pbx.send(b"".join(split_blocks(recording("inbound_answered_ru_trunk_prefix").body)))
    await settle(hub, calls=2)
    listed = await (
        await client.get("/api/v1/calls/missed?state=all", headers=accounts[Role.MANAGER].auth)
    ).json()
    [missed] = listed["items"]
    assert missed["state"] == "called_back"


async def test_operator_gets_the_screen_pop_while_the_phone_rings(
    hub_client: HubClient, pbx: AmiReplayServer, accounts: dict[Role, Any], sessions: SessionFactory
) -> None:
    async with sessions() as session:
        owner = await session.scalar(select(User.id).where(User.username == "manager"))
        await contacts.create_contact(
            sessions,
            ContactDraft(
                name="Ivan Petrov",
                company="Acme",
                phones=(parse_phone("+79035550101", "RU"),),
                tags=("vip",),
            ),
            owner_id=owner,
            source="test",
        )
    client, hub = await hub_client()
    await pbx.wait_logins(1)
    async with client.ws_connect("/api/v1/live", headers=accounts[Role.OPERATOR].auth) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello"
        await pbx.send(recording("inbound_answered_e164_with_name").body)
        # The whole recording arrives at once, so the call may end before the pop is built:
        # the offer and the call's updates come on the feed in either order.
        pops, updates = await _feed_until_ended(ws)
        [pop] = pops
        assert pop["extension"] == "201" and pop["match"] == "match"
        assert pop["contact"]["name"] == "Ivan Petrov"
        assert pop["contact"]["company"] == "Acme" and pop["contact"]["tags"] == ["vip"]
        assert pop["contact"]["owner"] == {"id": owner, "name": "manager"}
        assert pop["call"]["number"] == "+79035550101"
        assert pop["call"]["number_display"] == "8 (903) 555-01-01"
        assert pop["call"]["caller_name"] == "IVAN PETROV"
        assert updates[-1]["call"]["status"] == "answered"
        assert updates[-1]["call"]["duration_s"] == 6


async def _feed_until_ended(
    ws: aiohttp.ClientWebSocketResponse,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Screen pops and call updates from the feed until a call.offered and the call's end."""
    pops: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    while not pops or not updates or updates[-1]["call"]["ended_at"] is None:
        message = await ws.receive_json(timeout=5)
        assert message["type"] in ("call.offered", "call.updated"), message
        (pops if message["type"] == "call.offered" else updates).append(message["data"])
    return pops, updates


async def test_unknown_caller_pops_as_unknown_with_the_number(
    hub_client: HubClient, pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    client, hub = await hub_client()
    await pbx.wait_logins(1)
    operator = accounts[Role.OPERATOR].auth
    earlier = {
        "channel": "sms",
        "direction": "in",
        "status": "received",
        "external_id": "earlier-sms-1",
        "occurred_at": "2026-11-20T10:00:00Z",
        "from_address": "+74957778899",
        "summary": "Do you deliver to Tula?",
    }
    logged = await client.post("/api/v1/interactions", json=earlier, headers=operator)
    assert logged.status == 201
    async with client.ws_connect("/api/v1/live", headers=operator) as ws:
        await ws.receive_json(timeout=5)
        await pbx.send(recording("inbound_queue_answered").body)
        [pop], _ = await _feed_until_ended(ws)
        assert pop["match"] == "unknown" and pop["contact"] is None
        assert pop["call"]["number"] == "+74957778899"
        assert pop["call"]["queue"] == "sales"
        # What this number wrote before, though it is on no card yet.
        assert [r["summary"] for r in pop["recent"]] == ["Do you deliver to Tula?"]


async def test_live_feed_from_another_site_is_refused(
    hub_client: HubClient, accounts: dict[Role, Any]
) -> None:
    client, _ = await hub_client()
    login = await client.post(
        "/api/v1/auth/login", json={"username": "operator", "password": "correct horse battery"}
    )
    assert login.status == 200
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/v1/live", headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403


async def test_operator_may_not_watch_all_calls(
    hub_client: HubClient, accounts: dict[Role, Any]
) -> None:
    client, _ = await hub_client()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/v1/live?calls=all", headers=accounts[Role.OPERATOR].auth)
    assert refused.value.status == 403


async def test_click_to_call_rings_the_operator_then_the_customer(
    hub_client: HubClient, pbx: AmiReplayServer, ivan: int, accounts: dict[Role, Any]
) -> None:
    pbx.on_originate = recording("outbound_click_to_call_answered").body
    client, hub = await hub_client()
    await pbx.wait_logins(1)
    operator = accounts[Role.OPERATOR].auth
    placed = await client.post(
        "/api/v1/calls",
        json={"contact_id": ivan},
        headers={**operator, "Idempotency-Key": "c2c-0001"},
    )
    assert placed.status == 202, await placed.text()
    body = await placed.json()
    assert body["id"] == "c2c-0001" and body["status"] == "queued"
    assert body["number"] == "+79161234567" and body["extension"] == "201"
    action = await pbx.wait_for_action("Originate")
    assert action["Channel"] == "PJSIP/201"
    assert action["Exten"] == "89161234567" and action["Context"] == "from-internal"
    assert action["Async"] == "true"
    variables = action["Variable"] if isinstance(action["Variable"], list) else [action["Variable"]]
    assert "__COMMHUB_CALL_ID=c2c-0001" in variables
    assert "Ivan Petrov" in action["CallerID"]
    await settle(hub, calls=1)
    [row] = await log_rows(client, accounts[Role.MANAGER].auth)
    assert row["direction"] == "out" and row["status"] == "answered"
    assert row["duration_s"] == 7 and row["contact_id"] == ivan
    assert row["to_address"] == "+79161234567"
    assert row["extra"]["request_id"] == "c2c-0001"

    again = await client.post(
        "/api/v1/calls",
        json={"contact_id": ivan},
        headers={**operator, "Idempotency-Key": "c2c-0001"},
    )
    assert again.status == 200
    assert (await again.json())["interaction_id"] == row["id"]
    assert len([a for a in pbx.actions if a.get("Action") == "Originate"]) == 1


async def test_click_to_call_failures_say_why(
    hub_client: HubClient, pbx: AmiReplayServer, ivan: int, accounts: dict[Role, Any]
) -> None:
    client, hub = await hub_client()
    await pbx.wait_logins(1)
    marketer_calls = await client.post(
        "/api/v1/calls", json={"contact_id": ivan}, headers=accounts[Role.MARKETER].auth
    )
    assert marketer_calls.status == 403
    no_extension = await client.post(
        "/api/v1/calls", json={"contact_id": ivan}, headers=accounts[Role.ADMIN].auth
    )
    assert no_extension.status == 422
    assert "extension" in (await no_extension.json())["detail"]
    bad_number = await client.post(
        "/api/v1/calls", json={"number": "12"}, headers=accounts[Role.OPERATOR].auth
    )
    assert bad_number.status == 422
    pbx.reject_originate = "Extension does not exist."
    rejected = await client.post(
        "/api/v1/calls", json={"contact_id": ivan}, headers=accounts[Role.OPERATOR].auth
    )
    assert rejected.status == 502
    assert "Extension does not exist" in (await rejected.json())["detail"]
    await pbx.close()
    await _wait_disconnected(hub)
    down = await client.post(
        "/api/v1/calls", json={"contact_id": ivan}, headers=accounts[Role.OPERATOR].auth
    )
    assert down.status == 503


async def _wait_disconnected(hub: Hub) -> None:
    async def poll() -> None:
        while hub.channels["main"].health().connected:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), 5)


async def test_replaying_the_stream_after_a_reconnect_logs_nothing_new(
    hub_client: HubClient, pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    burst = recording("inbound_burst_10")
    pbx.script += [
        Playback.from_recording(burst, close_at_end=True),
        Playback.from_recording(burst),
    ]
    client, hub = await hub_client()
    await pbx.wait_logins(2, timeout=10)
    await settle(hub, calls=10)
    rows = await log_rows(client, accounts[Role.MANAGER].auth)
    assert len(rows) == 10 and {r["duration_s"] for r in rows} == {4}
    health = await (await client.get("/api/v1/channels", headers=accounts[Role.ADMIN].auth)).json()
    [main] = health["items"]
    assert main["connected"] is True and main["reconnects"] >= 1
    assert main["last_event_at"] is not None


async def test_a_call_spanning_a_link_drop_is_logged_once_with_its_duration(
    hub_client: HubClient, pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    rec = recording("inbound_answered_ru_trunk_prefix")
    blocks = split_blocks(rec.body)
    cut = next(i for i, b in enumerate(blocks) if b.startswith(b"Event: BridgeEnter")) + 2
    pbx.script += [
        Playback(data=b"".join(blocks[:cut]), close_at_end=True),
        Playback(data=b"".join(blocks[cut:])),
    ]
    pbx.channels = [
        {
            "Channel": "Local/74951234567@from-trunk-00000000;2",
            "Uniqueid": "1795376470.1",
            "Linkedid": "1795376470.0",
            "Context": "from-trunk",
            "Exten": "74951234567",
            "ChannelState": "6",
            "Duration": "00:00:05",
            "BridgeId": BRIDGE,
        },
        {
            "Channel": "Local/201@operators-00000001;1",
            "Uniqueid": "1795376470.2",
            "Linkedid": "1795376470.0",
            "Context": "operators",
            "ChannelState": "6",
            "Duration": "00:00:05",
            "BridgeId": BRIDGE,
        },
        {
            "Channel": "Local/201@operators-00000001;2",
            "Uniqueid": "1795376470.3",
            "Linkedid": "1795376470.0",
            "Context": "operators",
            "ChannelState": "6",
            "Duration": "00:00:05",
        },
        {
            "Channel": "Local/74951234567@from-trunk-00000000;1",
            "Uniqueid": "1795376470.0",
            "Linkedid": "1795376470.0",
            "Context": "from-trunk",
            "Exten": "74951234567",
            "ChannelState": "6",
            "Duration": "00:00:05",
        },
    ]
    client, hub = await hub_client()
    await pbx.wait_logins(2, timeout=10)
    await settle(hub, calls=1)
    [row] = await log_rows(client, accounts[Role.MANAGER].auth)
    assert row["status"] == "answered" and row["duration_s"] == 8
    assert row["extra"]["operator_talk"] == {"201": 8} and row["to_address"] == "74951234567"
    assert "approximate_end_s" not in row["extra"]


async def test_garbage_from_the_pbx_is_skipped_and_no_call_is_lost(
    hub_client: HubClient, pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    garbage = (
        b"\x00\xff\xfenot ami at all\r\n\r\n"
        b"Event: Newchannel\r\nUniqueid\r\n: broken\r\n\r\n"
        b"Response\r\n\r\n"
        b"Event: DialBegin\r\nDestUniqueid: 1.1\r\n\r\n"
    )
    body = recording("inbound_answered_ru_trunk_prefix").body
    pbx.script.append(Playback(data=garbage + body + garbage))
    client, hub = await hub_client()
    await settle(hub, calls=1)
    [row] = await log_rows(client, accounts[Role.MANAGER].auth)
    assert row["duration_s"] == 8
    health = await (await client.get("/api/v1/channels", headers=accounts[Role.ADMIN].auth)).json()
    assert health["items"][0]["detail"]["malformed_messages"] >= 1


async def test_two_hundred_concurrent_calls_are_each_logged_once(
    hub_client: HubClient, pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    stream = scale_burst(recording("inbound_burst_10"), 20)
    pbx.script.append(Playback(data=stream))
    client, hub = await hub_client()
    await settle(hub, calls=200, timeout=60)
    async with hub.sessions() as session:
        count = await session.scalar(select(func.count(func.distinct(Interaction.external_id))))
        total = await session.scalar(select(func.count()).select_from(Interaction))
        talks = set(await session.scalars(select(Interaction.duration_s)))
    assert count == total == 200
    assert talks == {4}


async def test_wrong_secret_is_reported_in_health_and_never_logged(
    hub_client: HubClient,
    pbx: AmiReplayServer,
    accounts: dict[Role, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client, hub = await hub_client(secret="wrong-" + SECRET)

    async def refused() -> dict[str, Any]:
        while True:
            health = await (
                await client.get("/api/v1/channels", headers=accounts[Role.ADMIN].auth)
            ).json()
            if health["items"][0]["error"]:
                return dict(health["items"][0])
            await asyncio.sleep(0.05)

    main = await asyncio.wait_for(refused(), 5)
    assert main["connected"] is False and "login refused" in main["error"]
    assert SECRET not in caplog.text


async def test_operators_cannot_see_channel_health(
    hub_client: HubClient, accounts: dict[Role, Any]
) -> None:
    client, _ = await hub_client()
    denied = await client.get("/api/v1/channels", headers=accounts[Role.OPERATOR].auth)
    assert denied.status == 403


@pytest.mark.parametrize(
    ("cut_before", "status", "reason"),
    [
        ("Event: Hangup", "answered", None),
        ("Event: DialEnd", "missed", "ended while the hub was not listening; outcome unknown"),
    ],
    ids=["talking", "ringing"],
)
async def test_a_call_that_ended_while_the_hub_was_stopped_is_closed_when_it_reconnects(
    hub_client: HubClient,
    pbx: AmiReplayServer,
    accounts: dict[Role, Any],
    cut_before: str,
    status: str,
    reason: str | None,
) -> None:
    blocks = split_blocks(recording("inbound_answered_ru_trunk_prefix").body)
    cut = next(i for i, b in enumerate(blocks) if b.startswith(cut_before.encode()))
    pbx.script.append(Playback(data=b"".join(blocks[:cut])))
    first, hub = await hub_client()
    await pbx.wait_logins(1)
    await _until(lambda: _open_calls(hub), 1)
    await first.close()  # the hub stops mid-call
    await pbx.send(b"".join(blocks[cut:]))  # and the call ends while nobody listens
    client, hub = await hub_client()  # a new start: the PBX reports no channels up
    await settle(hub, calls=1)
    [row] = await log_rows(client, accounts[Role.MANAGER].auth)
    assert row["status"] == status and row["ended_at"] is not None
    assert "approximate_end_s" in row["extra"] and row["extra"].get("reason") == reason
    assert row["extra"]["number_as_presented"] == "89161234567"
    assert row["from_address"] == "+79161234567"
    missed = await (
        await client.get("/api/v1/calls/missed", headers=accounts[Role.OPERATOR].auth)
    ).json()
    assert len(missed["items"]) == (1 if status == "missed" else 0)


async def _open_calls(hub: Hub) -> int:
    async with hub.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(Interaction).where(Interaction.ended_at.is_(None))
        )
    return int(count or 0)


async def _until(count: Callable[[], Awaitable[int]], expected: int, timeout: float = 10) -> None:
    async def poll() -> None:
        while await count() != expected:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_an_ami_user_without_reporting_rights_still_logs_every_call(
    hub_client: HubClient,
    pbx: AmiReplayServer,
    accounts: dict[Role, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    pbx.denied.add("CoreShowChannels")
    pbx.script.append(Playback.from_recording(recording("inbound_burst_10")))
    client, hub = await hub_client()
    await settle(hub, calls=10)
    health = await (await client.get("/api/v1/channels", headers=accounts[Role.ADMIN].auth)).json()
    assert health["items"][0]["connected"] is True
    assert health["items"][0]["reconnects"] == 0
    assert "give the AMI user 'write = reporting'" in caplog.text


async def test_a_process_that_does_not_listen_never_connects_and_says_where_to_go(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    pbx: AmiReplayServer,
    ivan: int,
    accounts: dict[Role, Any],
) -> None:
    quiet = settings.model_copy(update={"listen": False})
    channel = adapter(
        name="main", options=pbx_options(pbx), context=ChannelContext(phone_region="RU")
    )

    async def opener() -> Hub:
        return await open_hub(quiet, channels=[channel])

    client = await aiohttp_client(create_app(opener))
    operator = accounts[Role.OPERATOR].auth
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/v1/live", headers=operator)
    assert refused.value.status == 503
    placed = await client.post("/api/v1/calls", json={"contact_id": ivan}, headers=operator)
    assert placed.status == 503
    assert "COMMHUB_LISTEN=false" in (await placed.json())["detail"]
    health = await (await client.get("/api/v1/channels", headers=accounts[Role.ADMIN].auth)).json()
    assert health["listening"] is False
    assert pbx.logins == 0


async def test_events_lost_to_a_full_queue_leave_no_call_open_for_ever(
    hub_client: HubClient, pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    # One read of the socket holds more call events than this queue: some are dropped,
    # among them hang-ups; the link then asks the PBX what is still up.
    client, hub = await hub_client(queue_size=100)
    await pbx.wait_logins(1)
    await pbx.wait_for_action("CoreShowChannels")
    await pbx.send(scale_burst(recording("inbound_burst_10"), 5))

    async def re_read() -> int:
        return len([a for a in pbx.actions if a.get("Action") == "CoreShowChannels"])

    async def open_after_writes() -> int:
        channel = hub.channels["main"]
        assert isinstance(channel, AmiChannel)
        await channel.drained()
        await hub.inbound.drained()
        return await _open_calls(hub)

    await _until(re_read, 2)
    await _until(open_after_writes, 0)
    health = await (await client.get("/api/v1/channels", headers=accounts[Role.ADMIN].auth)).json()
    assert health["items"][0]["detail"]["dropped_events"] > 0
    rows = await log_rows(client, accounts[Role.MANAGER].auth)
    assert rows and all(row["ended_at"] is not None for row in rows)


async def test_an_attended_transfer_lists_both_operators_with_each_ones_talk(
    hub_client: HubClient,
    pbx: AmiReplayServer,
    accounts: dict[Role, Any],
    sessions: SessionFactory,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> None:
    view = await contacts.create_contact(
        sessions,
        ContactDraft(name="Pavel Orlov", phones=(parse_phone("+79161112233", "RU"),)),
        owner_id=None,
        source="test",
    )
    pbx.script.append(Playback.from_recording(recording("inbound_attended_transfer")))
    client, hub = await hub_client()
    await settle(hub, calls=1)
    [row] = await log_rows(client, accounts[Role.MANAGER].auth)
    # 201 (the operator) answered, then handed the caller to 202 (the manager's phone).
    assert row["status"] == "answered" and row["contact_id"] == view.id
    assert row["extra"]["operators"] == ["201", "202"]
    assert row["extra"]["operator_talk"] == {"201": 4, "202": 5}
    assert row["duration_s"] == 9 and row["extra"]["total_s"] == 19
    assert row["extra"]["wait_s"] == 2 and row["extra"]["transfers"] == ["attended"]
    assert row["recording_ref"].endswith("1796340955.1.wav")
    await log_in(client, "operator")
    card = await (await client.get(f"/contacts/{view.id}")).text()
    assert "operator (0:04) → manager (0:05)" in card
    assert "0:19" in card


async def test_an_ivr_before_the_queue_is_waiting_not_talk(
    hub_client: HubClient, pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    pbx.script.append(Playback.from_recording(recording("inbound_queue_early_answer")))
    client, hub = await hub_client()
    await settle(hub, calls=1)
    [row] = await log_rows(client, accounts[Role.MANAGER].auth)
    assert row["status"] == "answered" and row["queue"] == "sales"
    assert row["extra"]["operators"] == ["201"] and row["extra"]["rang"] == ["201", "202"]
    assert row["duration_s"] == 6 and row["extra"]["operator_talk"] == {"201": 6}
    assert row["extra"]["wait_s"] == 6 and row["extra"]["total_s"] == 12
    started = datetime.fromisoformat(row["occurred_at"])
    assert datetime.fromisoformat(row["answered_at"]) - started >= timedelta(seconds=5)
    missed = await client.get("/api/v1/calls/missed", headers=accounts[Role.MANAGER].auth)
    assert (await missed.json())["items"] == []  # 202's phone rang too: not a missed call


async def test_health_counts_the_calls_the_live_list_shows_and_reconnects_apart_from_failures(
    hub_client: HubClient, pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    admin = accounts[Role.ADMIN].auth
    rec = recording("inbound_answered_ru_trunk_prefix")
    pbx.script.append(Playback.from_recording(rec, paced=True, close_at_end=True))
    client, hub = await hub_client()

    async def live() -> int:
        response = await client.get("/api/v1/calls/live", headers=admin)
        return len((await response.json())["items"])

    await _until(live, 1)
    health = await (await client.get("/api/v1/channels", headers=admin)).json()
    [main] = health["items"]
    assert main["connected"] is True and main["calls_in_progress"] == 1
    assert main["reconnects"] == 0 and main["failed_attempts"] == 0
    # The recording ends, the PBX hangs up; the peer refuses logins for a while.
    pbx.secret = "changed"
    await _until(live, 0, timeout=20)

    async def failed() -> int:
        body = await (await client.get("/api/v1/channels", headers=admin)).json()
        return min(2, int(body["items"][0]["failed_attempts"]))

    await _until(failed, 2, timeout=20)
    [down] = (await (await client.get("/api/v1/channels", headers=admin)).json())["items"]
    assert down["connected"] is False and down["disconnected_since"] is not None
    assert down["reconnects"] == 0 and down["calls_in_progress"] == 0
    pbx.secret = SECRET

    async def reconnects() -> int:
        body = await (await client.get("/api/v1/channels", headers=admin)).json()
        return int(body["items"][0]["reconnects"])

    await _until(reconnects, 1, timeout=20)
