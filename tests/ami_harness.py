"""The hub wired to a replayed PBX, as the Asterisk API tests and the browser tests use it."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from commhub.bootstrap import Hub
from commhub.store.schema import Interaction
from commhub_asterisk import AmiChannel
from commhub_asterisk.replay import AmiReplayServer


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
