"""The live feed on connect: the pops of calls still up, and the PBX link's status.

A page loaded (or a feed reconnected) in the middle of a call must show the
caller's pop again, and every page must know whether the hub still hears its
PBX. The hub runs as in production with its AMI link to a replay server; the
calls are recordings from a real Asterisk, some played only up to the moment
the test needs (the phone still ringing, the operator still talking).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

import ami_harness
from ami_harness import recording, settle
from ami_replay import AmiReplayServer
from commhub.bootstrap import Hub
from commhub.config import Settings
from commhub.domain.contacts import ContactDraft
from commhub.domain.phones import parse_phone
from commhub.domain.roles import Role
from commhub.models import Interaction
from commhub.services import contacts
from commhub.store.engine import SessionFactory

Client = TestClient[Any, Any]
Socket = aiohttp.ClientWebSocketResponse

RINGING_CALLER = "+79165550022"
"""The caller of ``reconnect_while_ringing``: ext. 201 rings, nobody has answered yet."""
TALKING_CALLER = "+79165550011"
"""The caller of ``reconnect_mid_call``: ext. 201 answered and is talking."""


@pytest.fixture
async def hub_client(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    accounts: dict[Role, Any],
    pbx: AmiReplayServer,
) -> tuple[Client, Hub]:
    """The hub with one PBX, the replay server, its link up."""
    client, hub = await ami_harness.hub_with_pbx(aiohttp_client, settings, pbx)
    await pbx.wait_logins(1)
    await _until(lambda: hub.channels["main"].health().connected)
    return client, hub


async def _until(ready: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not ready():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def call_in_progress(hub: Hub, *, status: str) -> Interaction:
    """Wait until the call being played is stored, not ended, with ``status``."""

    async def poll() -> Interaction:
        while True:
            await hub.inbound.drained()
            async with hub.sessions() as session:
                row = await session.scalar(
                    select(Interaction).where(
                        Interaction.channel == "call",
                        Interaction.status == status,
                        Interaction.ended_at.is_(None),
                    )
                )
            if row is not None:
                return row
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), 15)


async def frames_on_connect(client: Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    """What the feed sends on its own right after connecting (hello first), then quiet."""
    async with client.ws_connect("/api/v1/live", headers=headers) as ws:
        return await _frames_until_quiet(ws)


async def _frames_until_quiet(ws: Socket, quiet_s: float = 0.5) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while True:
        try:
            frames.append(await ws.receive_json(timeout=quiet_s))
        except TimeoutError:
            return frames


async def test_a_client_connecting_while_its_phone_rings_gets_the_pop(
    hub_client: tuple[Client, Hub], pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    client, hub = hub_client
    # The first part of the recording: 201 rings, and goes on ringing.
    await pbx.send(recording("reconnect_while_ringing.part1").body)
    row = await call_in_progress(hub, status="ringing")

    hello, *rest = await frames_on_connect(client, accounts[Role.OPERATOR].auth)
    assert hello["type"] == "hello"
    assert hello["data"]["pops"] == [row.external_id]
    [offered] = rest
    assert offered["type"] == "call.offered"
    pop = offered["data"]
    assert pop["extension"] == "201" and pop["match"] == "unknown"
    assert pop["call"]["id"] == row.external_id
    assert pop["call"]["status"] == "ringing" and pop["call"]["ended_at"] is None
    assert pop["call"]["number"] == RINGING_CALLER
    # The call being offered is no line of the caller's past.
    assert pop["recent"] == []


async def test_a_known_callers_pop_lists_their_past_without_the_call_itself(
    hub_client: tuple[Client, Hub],
    pbx: AmiReplayServer,
    accounts: dict[Role, Any],
    sessions: SessionFactory,
) -> None:
    client, hub = hub_client
    view = await contacts.create_contact(
        sessions,
        ContactDraft(name="Pavel Orlov", phones=(parse_phone(RINGING_CALLER, "RU"),)),
        owner_id=None,
        source="test",
    )
    operator = accounts[Role.OPERATOR].auth
    earlier = {
        "channel": "sms",
        "direction": "in",
        "status": "received",
        "external_id": "earlier-sms-1",
        "occurred_at": "2026-11-20T10:00:00Z",
        "from_address": RINGING_CALLER,
        "contact_id": view.id,
        "summary": "Call me back, please",
    }
    logged = await client.post("/api/v1/interactions", json=earlier, headers=operator)
    assert logged.status == 201, await logged.text()
    await pbx.send(recording("reconnect_while_ringing.part1").body)
    row = await call_in_progress(hub, status="ringing")
    assert row.contact_id == view.id

    _, offered = await frames_on_connect(client, operator)
    pop = offered["data"]
    assert pop["match"] == "match" and pop["contact"]["name"] == "Pavel Orlov"
    assert [r["summary"] for r in pop["recent"]] == ["Call me back, please"]
    assert row.external_id not in [r["external_id"] for r in pop["recent"]]


async def test_a_client_connecting_mid_conversation_gets_the_pop_as_answered(
    hub_client: tuple[Client, Hub], pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    client, hub = hub_client
    # Up to two seconds after 201 picked up: the conversation goes on.
    await pbx.send(recording("reconnect_mid_call.part1").body)
    row = await call_in_progress(hub, status="answered")

    _, offered = await frames_on_connect(client, accounts[Role.OPERATOR].auth)
    call = offered["data"]["call"]
    assert call["id"] == row.external_id and call["number"] == TALKING_CALLER
    assert call["status"] == "answered" and call["answered_at"] is not None
    assert call["operators"] == ["201"] and call["ended_at"] is None


async def test_nobody_else_gets_the_pop_and_an_ended_call_pops_for_nobody(
    hub_client: tuple[Client, Hub], pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    client, hub = hub_client
    await pbx.send(recording("reconnect_while_ringing.part1").body)
    await call_in_progress(hub, status="ringing")
    # The manager's extension (202) did not ring.
    [hello] = await frames_on_connect(client, accounts[Role.MANAGER].auth)
    assert hello["type"] == "hello" and hello["data"]["pops"] == []


async def test_a_client_connecting_after_the_call_ended_gets_no_pop(
    hub_client: tuple[Client, Hub], pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    client, hub = hub_client
    await pbx.send(recording("inbound_answered_ru_trunk_prefix").body)
    await settle(hub, calls=1)
    [hello] = await frames_on_connect(client, accounts[Role.OPERATOR].auth)
    assert hello["type"] == "hello" and hello["data"]["pops"] == []


async def test_the_feed_says_when_the_pbx_link_goes_down_and_comes_back(
    hub_client: tuple[Client, Hub], pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    client, _ = hub_client
    async with client.ws_connect("/api/v1/live", headers=accounts[Role.OPERATOR].auth) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["data"]["telephony"] == {
            "connected": True,
            "links": [{"name": "main", "connected": True}],
        }
        await pbx.close()  # the PBX goes away
        down = await ws.receive_json(timeout=5)
        assert down == {
            "type": "telephony.status",
            "data": {"connected": False, "links": [{"name": "main", "connected": False}]},
        }
        await pbx.start()  # on the same port: the link logs in again by itself
        up = await ws.receive_json(timeout=10)
        assert up["type"] == "telephony.status" and up["data"]["connected"] is True

    # Told on connect too, to every user, not only those with a phone.
    async with client.ws_connect("/api/v1/live", headers=accounts[Role.MARKETER].auth) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["data"]["telephony"]["connected"] is True


async def test_a_hub_without_a_pbx_reports_no_telephony(
    client: Client, accounts: dict[Role, Any]
) -> None:
    [hello] = await frames_on_connect(client, accounts[Role.OPERATOR].auth)
    assert hello["data"]["telephony"] is None and hello["data"]["pops"] == []
