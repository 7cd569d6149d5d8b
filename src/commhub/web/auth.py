"""Authentication and authorisation for every request: deny by default.

A caller proves who they are with an API token (``Authorization: Bearer``)
or the browser session cookie. Cookie-authenticated requests that change
something must also carry the session's CSRF token (header ``X-CSRF-Token``
or form field ``csrf_token``), since a browser sends the cookie on
cross-site requests too.
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlencode

from aiohttp import web

from commhub.domain.roles import allows
from commhub.services import sessions
from commhub.services.users import Principal
from commhub.web.endpoints import Handler, spec_of
from commhub.web.keys import (
    CSRF_FIELD,
    CSRF_HEADER,
    DATABASE,
    PRINCIPAL,
    SESSION_COOKIE,
)
from commhub.web.problems import Problem

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    match_info = request.match_info
    if match_info.http_exception is not None:
        return await handler(request)  # 404/405: let aiohttp answer
    spec = spec_of(match_info.handler)
    if spec is None:
        log.error("route %s %s declares no permission: denied", request.method, request.path)
        raise Problem(403, "this route is not open to anyone")
    if spec.permission is None:
        return await handler(request)
    principal = await principal_of(request)
    if principal is None:
        if not request.path.startswith("/api/"):
            back = request.path_qs if request.method == "GET" and request.path != "/" else ""
            raise web.HTTPSeeOther("/login" + (f"?{urlencode({'next': back})}" if back else ""))
        raise Problem(
            401,
            "log in or send an API token (Authorization: Bearer …)",
            headers={"WWW-Authenticate": 'Bearer realm="commhub"'},
        )
    if not allows(principal.role, spec.permission):
        raise Problem(403, f"role {principal.role.value} may not {spec.permission.value}")
    if principal.via == "session" and request.method not in SAFE_METHODS and spec.csrf:
        await _check_csrf(request, principal.csrf_token)
    request[PRINCIPAL] = principal
    return await handler(request)


async def principal_of(request: web.Request) -> Principal | None:
    """Who the credential proves, with the role they hold now (read on every request)."""
    return await sessions.caller(request.app[DATABASE], presented(request))


def presented(request: web.Request) -> sessions.Credentials:
    """The request's credential: a Bearer token; else, unless another ``Authorization``
    scheme was sent (which proves nobody), the session cookie."""
    token = _bearer(request)
    if token:
        return sessions.Credentials(token=token, cookie=None)
    if request.headers.get("Authorization"):
        return sessions.Credentials(token=None, cookie=None)
    return sessions.Credentials(token=None, cookie=request.cookies.get(SESSION_COOKIE))


def _bearer(request: web.Request) -> str:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def credential_of(request: web.Request) -> str | None:
    """The secret the caller authenticated with (API token or session cookie).

    Handed to services that end a user's credentials, so an admin resetting
    their own password keeps the session or token they are using.
    """
    return _bearer(request) or request.cookies.get(SESSION_COOKIE) or None


async def _check_csrf(request: web.Request, expected: str | None) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not expected or not sent or not secrets.compare_digest(sent, expected):
        raise Problem(403, f"missing or wrong CSRF token (send the {CSRF_HEADER} header)")
