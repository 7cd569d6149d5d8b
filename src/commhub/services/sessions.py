"""Login sessions: who a request's credential proves, logging in and logging out.

Each function is one short transaction of its own, so the web's auth
middleware, login pages and live feed never open a database session; the
rules themselves (hashing, digests, expiry) are in :mod:`commhub.services.users`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from commhub.domain.roles import Permission, allows
from commhub.models import User
from commhub.services import users
from commhub.services.database import Database
from commhub.services.users import Principal

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presents: an API token, else a session cookie (either may be absent)."""

    token: str | None
    cookie: str | None


@dataclass(frozen=True, slots=True)
class Login:
    """A successful login: the user, the session cookie's secret (shown once), its CSRF token."""

    user: User
    secret: str
    csrf_token: str


async def caller(db: Database, credentials: Credentials) -> Principal | None:
    """Who the credential proves, with the role they hold now; one read per request.

    An API token wins over a cookie.
    """
    async with db() as session:
        if credentials.token:
            return await users.principal_from_token(session, credentials.token)
        if credentials.cookie:
            return await users.principal_from_session(session, credentials.cookie)
    return None


async def still_admitted(
    db: Database, credentials: Credentials, *, needs: Permission | None = None
) -> bool:
    """Whether the credential still admits its user (and their role still allows ``needs``).

    For connections that outlive their request (the live feed): a database
    that cannot answer now counts as admitted (logged), so a blip never drops them.
    """
    try:
        now = await caller(db, credentials)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("live feed: cannot check its user now: %s", exc)
        return True
    return now is not None and (needs is None or allows(now.role, needs))


async def log_in(db: Database, username: str, password: str, *, ttl: timedelta) -> Login | None:
    """Check the password and open a browser session lasting ``ttl``; ``None`` if wrong."""
    async with db.begin() as session:
        user = await users.authenticate(session, username, password)
        if user is None:
            return None
        secret, row = await users.open_session(session, user, ttl=ttl)
        return Login(user=user, secret=secret, csrf_token=row.csrf_token)


async def log_out(db: Database, secret: str) -> None:
    """End the browser session whose cookie secret this is (none is fine)."""
    async with db.begin() as session:
        await users.close_session(session, secret)
