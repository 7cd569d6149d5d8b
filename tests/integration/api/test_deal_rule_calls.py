"""The rule that opens a deal for an inbound call, at the process boundary: the hub runs as in
production with its real AMI link, and a loopback PBX plays a stream recorded from Asterisk."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

import ami_harness
from ami_harness import recording, settle
from ami_replay import AmiReplayServer, Playback
from commhub.bootstrap import Hub
from commhub.config import Settings
from commhub.domain.contacts import ContactDraft
from commhub.domain.phones import parse_phone
from commhub.domain.roles import Role
from commhub.models import Deal, User
from commhub.services import contacts, pipelines
from commhub.services.deals import SYSTEM, DealDraft, create_deal
from commhub.store.engine import SessionFactory

Client = TestClient[Any, Any]
ANSWERED = "inbound_answered_ru_trunk_prefix"
"""Ivan (+7 916 123-45-67) calls and extension 201 answers."""


@pytest.fixture
async def ivan(sessions: SessionFactory, accounts: dict[Role, Any]) -> int:
    view = await contacts.create_contact(
        sessions,
        ContactDraft(name="Ivan Petrov", phones=(parse_phone("+79161234567", "RU"),)),
        owner_id=None,
        source="test",
    )
    return view.id


@pytest.fixture
def start_hub(
    aiohttp_client: Callable[..., Awaitable[Client]], settings: Settings, pbx: AmiReplayServer
) -> Callable[[], Awaitable[tuple[Client, Hub]]]:
    async def start() -> tuple[Client, Hub]:
        return await ami_harness.hub_with_pbx(aiohttp_client, settings, pbx)

    return start


async def rule(sessions: SessionFactory, on: bool) -> None:
    await pipelines.update_pipeline(sessions, 1, auto_create={"call": on})


async def deals(sessions: SessionFactory) -> list[Deal]:
    async with sessions() as session:
        return list(await session.scalars(select(Deal).order_by(Deal.id)))


async def operator_id(sessions: SessionFactory) -> int:
    async with sessions() as session:
        found = await session.scalar(select(User.id).where(User.extension == "201"))
    assert found is not None
    return found


async def test_an_answered_call_opens_one_deal_for_the_answering_operator_even_when_replayed(
    start_hub: Callable[[], Awaitable[tuple[Client, Hub]]],
    pbx: AmiReplayServer,
    sessions: SessionFactory,
    ivan: int,
) -> None:
    await rule(sessions, True)
    stream = recording(ANSWERED)
    pbx.script += [
        Playback.from_recording(stream, close_at_end=True),
        Playback.from_recording(stream),
    ]
    _, hub = await start_hub()
    await pbx.wait_logins(2, timeout=10)
    await settle(hub, calls=1)
    [deal] = await deals(sessions)
    assert deal.contact_id == ivan and deal.owner_id == await operator_id(sessions)
    assert deal.source == "call" and deal.currency == "RUB" and deal.closed_at is None
    assert deal.origin_key is not None and deal.origin_key.startswith("rule:call:")


async def test_a_restarted_hub_hearing_the_call_again_opens_nothing_more(
    start_hub: Callable[[], Awaitable[tuple[Client, Hub]]],
    pbx: AmiReplayServer,
    sessions: SessionFactory,
    ivan: int,
) -> None:
    await rule(sessions, True)
    pbx.script.append(Playback.from_recording(recording(ANSWERED)))
    first, hub = await start_hub()
    await settle(hub, calls=1)
    assert len(await deals(sessions)) == 1
    await first.close()
    pbx.script.append(Playback.from_recording(recording(ANSWERED)))
    _, hub = await start_hub()
    await pbx.wait_logins(2, timeout=10)
    await settle(hub, calls=1)
    [deal] = await deals(sessions)
    assert deal.contact_id == ivan


async def test_no_deal_when_the_rule_is_off(
    start_hub: Callable[[], Awaitable[tuple[Client, Hub]]],
    pbx: AmiReplayServer,
    sessions: SessionFactory,
    ivan: int,
) -> None:
    await rule(sessions, False)
    pbx.script.append(Playback.from_recording(recording(ANSWERED)))
    _, hub = await start_hub()
    await settle(hub, calls=1)
    assert await deals(sessions) == []


async def test_no_second_deal_for_a_contact_with_one_open(
    start_hub: Callable[[], Awaitable[tuple[Client, Hub]]],
    pbx: AmiReplayServer,
    sessions: SessionFactory,
    ivan: int,
) -> None:
    await rule(sessions, True)
    opened = await create_deal(sessions, DealDraft("Boiler", "RUB", contact_id=ivan), SYSTEM)
    pbx.script.append(Playback.from_recording(recording(ANSWERED)))
    _, hub = await start_hub()
    await settle(hub, calls=1)
    assert [deal.id for deal in await deals(sessions)] == [opened.id]
