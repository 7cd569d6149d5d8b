"""The hub wired to a replayed PBX, as the Asterisk API tests and the browser tests use it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from ami_replay import AmiReplayServer
from commhub.bootstrap import Hub, open_hub
from commhub.channels import ChannelContext
from commhub.config import Settings
from commhub.models import Interaction
from commhub.web.app import create_app
from commhub_asterisk import AmiChannel, adapter
from commhub_asterisk.recordings import Recording, load_recording

AMI = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ami"
"""The streams recorded from a real Asterisk."""
SECRET = "s3cret-never-logged"
"""The replay PBX's AMI secret: tests check it never reaches a log or an answer."""
Client = TestClient[Any, Any]


def recording(name: str) -> Recording:
    return load_recording(AMI, name)


async def replay_pbx() -> AsyncIterator[AmiReplayServer]:
    """A replay PBX on loopback for one test (the ``pbx`` fixture)."""
    server = AmiReplayServer(username="commhub", secret=SECRET)
    await server.start()
    yield server
    await server.close()


async def hub_with_pbx(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    pbx: AmiReplayServer,
    **overrides: Any,
) -> tuple[Client, Hub]:
    """The app and hub with one PBX named ``main`` on the replay server (not yet logged in)."""
    channel = adapter(
        name="main",
        options=pbx_options(pbx, **{"secret": SECRET, **overrides}),
        context=ChannelContext(phone_region=settings.phone_region),
    )
    opened: list[Hub] = []

    async def opener() -> Hub:
        hub = await open_hub(settings, channels=[channel])
        opened.append(hub)
        return hub

    client = await aiohttp_client(create_app(opener))
    return client, opened[0]


def pbx_options(server: AmiReplayServer, *, secret: str, **overrides: Any) -> dict[str, Any]:
    """The Asterisk channel's options for the replay server: the recordings' contexts."""
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "username": "commhub",
        "secret": secret,
        "trunk_contexts": ["from-trunk", "sim-pstn-out"],
        "operator_contexts": ["operators", "operators-noanswer", "from-internal"],
        "originate_context": "from-internal",
        "region": "RU",
        "reconnect_max_s": 1.0,
        "cdr_wait_s": 0.5,
    }
    options.update(overrides)
    return options


async def settle(hub: Hub, *, calls: int, timeout: float = 15.0) -> None:
    """Wait until ``calls`` calls have ended in the log and the writers are idle."""
    channel = hub.channels["main"]
    assert isinstance(channel, AmiChannel)

    async def ended() -> int:
        await channel.drained()
        await hub.inbound.drained()
        async with hub.sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Interaction)
                .where(Interaction.ended_at.is_not(None))
            )
        return int(count or 0)

    async def poll() -> None:
        while await ended() != calls:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)
