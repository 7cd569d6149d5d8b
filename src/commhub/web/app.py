"""The application factory: builds the aiohttp app from settings and an open hub."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from commhub.bootstrap import Hub
from commhub.domain.login_attempts import LoginAttempts
from commhub.web.auth import auth_middleware
from commhub.web.endpoints import MAX_JSON_BYTES
from commhub.web.failures import problem_middleware
from commhub.web.keys import CHANNELS, DATABASE, FEED, HUB, JOBS, LOGIN_ATTEMPTS, SETTINGS
from commhub.web.live import OPEN_SOCKETS, close_live_sockets, watch_telephony
from commhub.web.routes import add_routes

HubOpener = Callable[[], Awaitable[Hub]]


def create_app(open_hub: HubOpener) -> web.Application:
    """An app whose resources (engine, job queue) open on startup and close on cleanup.

    ``open_hub`` is called once when the app starts, so nothing connects at
    import or construction time.
    """
    app = web.Application(
        middlewares=[problem_middleware, auth_middleware],
        client_max_size=MAX_JSON_BYTES,
    )

    async def hub_context(app: web.Application) -> AsyncIterator[None]:
        hub = await open_hub()
        app[SETTINGS] = hub.settings
        app[DATABASE] = hub.sessions
        app[JOBS] = hub.jobs
        app[HUB] = hub
        app[FEED] = hub.feed
        app[CHANNELS] = hub.channels
        app[LOGIN_ATTEMPTS] = LoginAttempts(limit=hub.settings.login_max_failures)
        try:
            yield
        finally:
            await hub.close()

    app[OPEN_SOCKETS] = weakref.WeakSet()
    app.on_shutdown.append(close_live_sockets)
    app.cleanup_ctx.append(hub_context)
    app.cleanup_ctx.append(watch_telephony)
    add_routes(app)
    return app
