"""A click-to-call that Asterisk could not place says why, on the request and on the card.

Asterisk accepts an async ``Originate`` at once and reports the failure later
in ``OriginateResponse`` (``Response: Failure`` with a ``Reason`` code). The
replay peer answers the hub's ``Originate`` with the recorded failure (its
ActionID ``c2c-4`` becomes the action's own); the hub's real AMI link and
call tracker read it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import ami_harness
from ami_harness import recording
from ami_replay import AmiReplayServer
from commhub.config import Settings
from commhub.domain.roles import Role

REASON_0 = "no such extension, or the operator's phone is unreachable"
"""The tracker's words for ``OriginateResponse`` ``Reason: 0`` (the operator's leg could not
even be created: the recording's extension 209 does not exist)."""
Client = TestClient[Any, Any]


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    accounts: dict[Role, Any],
    pbx: AmiReplayServer,
) -> Client:
    """The hub with one PBX, the replay peer, connected."""
    made, _ = await ami_harness.hub_with_pbx(aiohttp_client, settings, pbx)
    await pbx.wait_logins(1)
    return made


async def test_a_failed_originate_shows_asterisks_reason_on_the_request_and_the_card(
    client: Client, pbx: AmiReplayServer, accounts: dict[Role, Any]
) -> None:
    operator = accounts[Role.OPERATOR].auth
    made = await client.post(
        "/api/v1/contacts",
        json={"name": "Ivan Petrov", "phones": ["+7 916 123-45-67"]},
        headers=operator,
    )
    assert made.status == 201, await made.text()
    ivan = (await made.json())["id"]
    pbx.on_originate = recording("outbound_click_to_call_failed").body
    placed = await client.post(
        "/api/v1/calls",
        json={"contact_id": ivan},
        headers={**operator, "Idempotency-Key": "c2c-failed-1"},
    )
    assert placed.status == 202, await placed.text()
    assert (await placed.json())["status"] == "queued"
    # No route reads a request by id: the same Idempotency-Key returns it as it is now.
    request = await _settled_request(client, operator, ivan, "c2c-failed-1")
    assert (request["status"], request["error"]) == ("failed", REASON_0)
    timeline = await client.get(f"/api/v1/contacts/{ivan}/timeline", headers=operator)
    [row] = (await timeline.json())["items"]
    assert (row["channel"], row["direction"], row["status"]) == ("call", "out", "failed")
    assert row["to_address"] == "+79161234567"
    assert row["extra"]["reason"] == REASON_0
    assert row["extra"]["request_id"] == "c2c-failed-1"
    assert request["interaction_id"] == row["id"]
    assert len([a for a in pbx.actions if a.get("Action") == "Originate"]) == 1


async def _settled_request(
    client: Client, auth: dict[str, str], contact_id: int, request_id: str
) -> dict[str, Any]:
    """The request once the PBX's answer reached it (it leaves ``queued``), or after 10 s."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        again = await client.post(
            "/api/v1/calls",
            json={"contact_id": contact_id},
            headers={**auth, "Idempotency-Key": request_id},
        )
        assert again.status == 200, await again.text()
        request = dict(await again.json())
        if request["status"] != "queued" or asyncio.get_running_loop().time() > deadline:
            return request
        await asyncio.sleep(0.05)
