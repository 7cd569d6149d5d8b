"""The live feed over WebSocket: ``GET /api/v1/live``.

A logged-in user connects and receives, as JSON text frames
``{"type": …, "data": …}``, the events meant for them: screen pops when their
phone rings (``call.offered``) and changes to calls they handle
(``call.updated``). With ``?calls=all`` a user allowed to watch calls gets
every call's changes. Browsers authenticate with the session cookie; the
``Origin`` must then be this site's own, so another site cannot open the feed
with a visitor's cookie. See docs/live.md for the payloads.

On connect a client is told the PBX links' status (in ``hello``) and gets the
pops of calls still up that concern its user, so a page loaded or a feed
reconnected mid-call shows the pop again.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any, Final

from aiohttp import WSCloseCode, WSMsgType, web

from commhub.domain.roles import Permission, allows
from commhub.services import live, sessions
from commhub.services.screen_pop import pops_in_progress
from commhub.web.api.calls import NOT_LISTENING
from commhub.web.auth import presented
from commhub.web.endpoints import endpoint
from commhub.web.keys import DATABASE, FEED, HUB, SETTINGS, principal
from commhub.web.problems import Problem, invalid

HEARTBEAT_S = 25.0
RECHECK_S = 5.0
"""How often an open feed checks that its user may still have it (deactivated, logged out,
a token revoked, a role that no longer watches calls): then it is closed with 1008."""
OPEN_SOCKETS: Final = web.AppKey("live_sockets", weakref.WeakSet[web.WebSocketResponse])
"""The feed's connections, so a shutdown can tell each client to reconnect elsewhere."""
TELEPHONY_WATCH: Final = web.AppKey("telephony_watch", live.TelephonyWatch)


async def watch_telephony(app: web.Application) -> AsyncIterator[None]:
    """A ``cleanup_ctx``: in the process that owns the PBX links, tell the feed when they
    go down or come back. Registered after the hub's own context, closed before it."""
    hub = app[HUB]
    watch = live.TelephonyWatch(hub.feed, hub.channels.values())
    app[TELEPHONY_WATCH] = watch
    if hub.listening:
        await watch.start()
    try:
        yield
    finally:
        await watch.stop()


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
    # The links read before subscribing (nothing awaits in between): a change this read
    # finds is told to the others, and this client hears it in its hello, not twice.
    telephony = request.app[TELEPHONY_WATCH]
    telephony.check()  # as of now, not as of the last tick
    status = telephony.status
    # Subscribed first, sending later: what happens while the pops are read waits in
    # the queue and reaches the client after them, never before (no stale pop on top).
    subscription = feed.subscribe(caller.user_id, watch_all_calls=watch)
    sender: asyncio.Task[None] | None = None
    reader: asyncio.Task[None] | None = None
    guard: asyncio.Task[bool] | None = None
    try:
        pops = await pops_in_progress(
            request.app[DATABASE],
            caller.user_id,
            default_region=request.app[SETTINGS].phone_region,
            up=request.app[HUB].inbound.calls_up,
        )
        await socket.send_json(
            {
                "type": live.HELLO,
                "data": {
                    "user_id": caller.user_id,
                    "calls": "all" if watch else "mine",
                    "telephony": status.as_data() if status is not None else None,
                    "pops": [pop["call"]["id"] for pop in pops],
                },
            }
        )
        for pop in pops:
            await socket.send_json({"type": live.CALL_OFFERED, "data": pop})
        sender = asyncio.create_task(_send(socket, subscription))
        reader = asyncio.create_task(_read_until_closed(socket))
        guard = asyncio.create_task(_guard(request, socket, watch=watch))
        await asyncio.wait((reader, guard), return_when=asyncio.FIRST_COMPLETED)
        if guard.done() and guard.result():
            # Closed from this task once nothing reads: aiohttp then waits for the
            # client's answer, so the client sees 1008, not a cut connection.
            await _stop(reader)
            await socket.close(code=WSCloseCode.POLICY_VIOLATION, message=b"session ended")
    finally:
        feed.unsubscribe(subscription)
        for task in (sender, reader, guard):
            await _stop(task)
    return socket


async def _read_until_closed(socket: web.WebSocketResponse) -> None:
    """The client sends nothing we use; reading answers its pings and notices its close."""
    async for message in socket:
        if message.type is WSMsgType.ERROR:
            return


async def _guard(request: web.Request, socket: web.WebSocketResponse, *, watch: bool) -> bool:
    """True once the feed's credential no longer admits it (a session ended for good)."""
    credentials = presented(request)
    needs = Permission.CALLS_WATCH if watch else None
    while not socket.closed:
        await asyncio.sleep(RECHECK_S)
        if not await sessions.still_admitted(request.app[DATABASE], credentials, needs=needs):
            return True
    return False


async def _stop(task: asyncio.Task[Any] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


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
