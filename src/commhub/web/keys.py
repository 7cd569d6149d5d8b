"""Typed keys for what the app and each request carry."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from commhub.bootstrap import Hub
from commhub.channels import Channel
from commhub.config import Settings
from commhub.domain.login_attempts import LoginAttempts
from commhub.jobs.queue import JobQueue
from commhub.services.database import Database
from commhub.services.live import LiveFeed
from commhub.services.users import Principal

SETTINGS: Final = web.AppKey("settings", Settings)
DATABASE: Final = web.AppKey("database", Database)
"""The handle to pass to services; handlers never open a session themselves."""
JOBS: Final = web.AppKey("jobs", JobQueue)
LOGIN_ATTEMPTS: Final = web.AppKey("login_attempts", LoginAttempts)
HUB: Final = web.AppKey("hub", Hub)
FEED: Final = web.AppKey("feed", LiveFeed)
CHANNELS: Final = web.AppKey("channels", dict[str, Channel])

PRINCIPAL: Final = web.RequestKey("principal", Principal)
"""Request key of the authenticated :class:`Principal` (set by the auth middleware)."""

SESSION_COOKIE: Final = "commhub_session"
LOGIN_CSRF_COOKIE: Final = "commhub_login_csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf_token"


def principal(request: web.Request) -> Principal:
    """The caller; only valid in handlers that declared a permission."""
    if PRINCIPAL not in request:
        raise RuntimeError("no principal on a public endpoint")
    return request[PRINCIPAL]
