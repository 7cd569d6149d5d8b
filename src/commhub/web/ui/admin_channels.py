"""The channels page: is each PBX, mailbox and gateway connected, and what went wrong last."""

from __future__ import annotations

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.web.api.calls import channel_status
from commhub.web.endpoints import endpoint
from commhub.web.keys import SETTINGS
from commhub.web.ui.render import page


@endpoint(
    "Channels: each PBX, mailbox and gateway's health and the hub's counters.",
    permission=Permission.CHANNELS_VIEW,
    tag="pages",
)
async def channels_page(request: web.Request) -> web.StreamResponse:
    status = await channel_status(request.app)
    return await page(
        request,
        "admin_channels.html",
        section="admin-channels",
        health=status,
        channels_file=request.app[SETTINGS].channels_file,
        in_error=[item.name for item in status.items if item.error],
    )
