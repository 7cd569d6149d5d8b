"""Log in, log out, who am I: the browser session over JSON."""

from __future__ import annotations

import math
import time
from datetime import timedelta

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.services import accounts, sessions
from commhub.services.errors import InvalidInput, NotFound
from commhub.web.api import schemas
from commhub.web.api.views import user_out
from commhub.web.endpoints import endpoint, json_response, read_body
from commhub.web.keys import DATABASE, LOGIN_ATTEMPTS, SESSION_COOKIE, SETTINGS, principal
from commhub.web.problems import Problem


def set_session_cookie(request: web.Request, response: web.StreamResponse, secret: str) -> None:
    """The session cookie: HttpOnly (no script can read it), SameSite=Lax, Secure behind TLS."""
    settings = request.app[SETTINGS]
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=settings.session_ttl_hours * 3600,
        httponly=True,
        samesite="Lax",
        secure=settings.cookie_secure,
        path="/",
    )


class TooManyAttempts(Exception):
    """This client guessed this username's password wrong too often; try again later."""

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        minutes = max(1, math.ceil(self.retry_after_s / 60))
        super().__init__(f"too many wrong passwords: try again in {minutes} min")

    def problem(self) -> Problem:
        """The API's answer: 429 with Retry-After (RFC 9110 §10.2.3)."""
        return Problem(429, str(self), headers={"Retry-After": str(self.retry_after_s)})


async def password_login(
    request: web.Request, username: str, password: str
) -> sessions.Login | None:
    """A new session if the password is right, else ``None``; raises :class:`TooManyAttempts`.

    Shared by the JSON login and the login form, so both count the same guesses.
    """
    attempts = request.app[LOGIN_ATTEMPTS]
    client = request.remote or "unknown"
    wait = attempts.retry_after(username, client, time.monotonic())
    if wait is not None:
        raise TooManyAttempts(wait)
    ttl = timedelta(hours=request.app[SETTINGS].session_ttl_hours)
    login = await sessions.log_in(request.app[DATABASE], username, password, ttl=ttl)
    if login is None:
        attempts.failed(username, client, time.monotonic())
    else:
        attempts.succeeded(username, client)
    return login


@endpoint(
    "Log in with a username and password; sets the session cookie.",
    permission=None,
    tag="session",
    body=schemas.LoginRequest,
    response=schemas.SessionOut,
)
async def login(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.LoginRequest)
    try:
        opened = await password_login(request, body.username, body.password)
    except TooManyAttempts as exc:
        raise exc.problem() from None
    if opened is None:
        raise Problem(401, "wrong username or password")
    out = schemas.SessionOut(user=user_out(opened.user), csrf_token=opened.csrf_token)
    response = json_response(out)
    set_session_cookie(request, response, opened.secret)
    return response


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    """Forget the caller's browser session on the server and in the browser."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await sessions.log_out(request.app[DATABASE], secret)
    response.del_cookie(SESSION_COOKIE, path="/")


@endpoint("End the browser session.", permission=Permission.SESSION, tag="session", status=204)
async def logout(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=204)
    await end_session(request, response)
    return response


@endpoint(
    "The logged-in user, and the CSRF token of a cookie session.",
    permission=Permission.SESSION,
    tag="session",
    response=schemas.SessionOut,
)
async def me(request: web.Request) -> web.StreamResponse:
    caller = principal(request)
    try:
        user = await accounts.user(request.app[DATABASE], caller.user_id)
    except NotFound:
        raise Problem(401, "this user no longer exists") from None
    return json_response(schemas.SessionOut(user=user_out(user), csrf_token=caller.csrf_token))


@endpoint(
    "Change your own password; your other browser sessions end, API tokens stay valid.",
    permission=Permission.SESSION,
    tag="session",
    body=schemas.PasswordChange,
    status=204,
)
async def change_password(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.PasswordChange)
    try:
        await change_own_password(request, current=body.current_password, new=body.new_password)
    except TooManyAttempts as exc:
        raise exc.problem() from None
    return web.Response(status=204)


async def change_own_password(request: web.Request, *, current: str, new: str) -> None:
    """The caller's password change, guesses of the current one counted like logins.

    Shared by the API and the profile page. Raises :class:`TooManyAttempts`,
    or ``InvalidInput`` naming the field at fault.
    """
    caller = principal(request)
    # The current-password check is a password check too: a stolen session
    # must not become a way to guess the password without the login's limit.
    attempts = request.app[LOGIN_ATTEMPTS]
    client = request.remote or "unknown"
    wait = attempts.retry_after(caller.username, client, time.monotonic())
    if wait is not None:
        raise TooManyAttempts(wait)
    keep = request.cookies.get(SESSION_COOKIE) if caller.via == "session" else None
    try:
        await accounts.change_own_password(
            request.app[DATABASE],
            caller.user_id,
            current=current,
            new=new,
            keep_session_secret=keep,
        )
    except InvalidInput as wrong:
        if wrong.field == "current_password":
            attempts.failed(caller.username, client, time.monotonic())
        raise
