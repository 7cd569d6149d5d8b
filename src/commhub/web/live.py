"""The live feed over WebSocket: ``GET /api/v1/live``.

A logged-in user connects and receives, as JSON text frames
``{"type": …, "data": …}``, the events meant for them: screen pops when their
phone rings (``call.offered``) and changes to calls they handle
(``call.updated``). With ``?calls=all`` a user allowed to watch calls gets
every call's changes. Browsers authenticate with the session cookie; the
``Origin`` must then be this site's own, so another site cannot open the feed
with a visitor's cookie. See docs/live.md for the payloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Final

from aiohttp import WSCloseCode, WSMsgType, web

from commhub.domain.roles import Permission, allows
from commhub.services import live
from commhub.web.api.calls import NOT_LISTENING
from commhub.web.endpoints import endpoint
from commhub.web.keys import FEED, HUB, principal
from commhub.web.problems import Problem, invalid

log = logging.getLogger(__name__)

HEARTBEAT_S = 25.0
OPEN_SOCKETS: Final = web.AppKey("live_sockets", weakref.WeakSet[web.WebSocketResponse])
"""The feed's connections, so a shutdown can tell each client to reconnect elsewhere."""


async def close_live_sockets(app: web.Application) -> None:
    """Say "going away" on every feed connection (a restart, a deploy): clients reconnect
    at once instead of waiting for a heartbeat to time out."""
    open_now = app[OPEN_SOCKETS]
    for socket in list(open_now):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server going away")


@endpoint(
    "The live feed (WebSocket): screen pops and call updates for the caller; "
    "?calls=all adds every call for users who may watch calls.",
    permission=Permission.SESSION,
    tag="live",
)
async def live_feed(request: web.Request) -> web.StreamResponse:
    caller = principal(request)
    if not request.app[HUB].listening:
        # A feed that would never carry a screen pop must say so, not stay silent.
        raise Problem(503, NOT_LISTENING)
    watch = request.query.get("calls", "") == "all"
    if watch and not allows(caller.role, Permission.CALLS_WATCH):
        raise Problem(403, f"role {caller.role.value} may not watch all calls")
    if caller.via == "session":
        _check_origin(request)
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
    if not socket.can_prepare(request).ok:
        raise invalid("Upgrade", "connect with a WebSocket client")
    await socket.prepare(request)
    request.app[OPEN_SOCKETS].add(socket)
    feed = request.app[FEED]
    subscription = feed.subscribe(caller.user_id, watch_all_calls=watch)
    sender = asyncio.create_task(_send(socket, subscription))
    try:
        await socket.send_json(
            {
                "type": live.HELLO,
                "data": {"user_id": caller.user_id, "calls": "all" if watch else "mine"},
            }
        )
        async for message in socket:
            if message.type is WSMsgType.ERROR:
                break
    finally:
        feed.unsubscribe(subscription)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    return socket


async def _send(socket: web.WebSocketResponse, subscription: live.Subscription) -> None:
    reported = 0
    while not socket.closed:
        message = await subscription.queue.get()
        if subscription.dropped != reported:
            reported = subscription.dropped
            await socket.send_json({"type": live.EVENTS_DROPPED, "data": {"count": reported}})
        await socket.send_json(message)


def _check_origin(request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin is None:
        return
    expected = f"{request.scheme}://{request.host}"
    if origin != expected:
        raise Problem(403, f"WebSocket from another site ({origin}) refused")
