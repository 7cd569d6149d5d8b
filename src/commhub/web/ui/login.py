"""Logging in and out from the browser.

The login form is protected against login CSRF with a double-submit token:
a random value set as a cookie and repeated in a hidden field, which a
cross-site form cannot read. After login the browser goes back to the page
it asked for (a path on this site only, never another host: see
:mod:`commhub.web.ui.return_paths`).
"""

from __future__ import annotations

import math
import secrets

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.web.api.session import (
    TooManyAttempts,
    end_session,
    password_login,
    set_session_cookie,
)
from commhub.web.endpoints import endpoint
from commhub.web.keys import CSRF_FIELD, LOGIN_CSRF_COOKIE
from commhub.web.ui.i18n import N_
from commhub.web.ui.render import html, language_of, render_text, translate
from commhub.web.ui.return_paths import local_path


def _login_page(
    request: web.Request,
    *,
    error: str = "",
    username: str = "",
    status: int = 200,
    **values: object,
) -> web.Response:
    language = language_of(request, None)
    token = secrets.token_urlsafe(32)
    text = render_text(
        language,
        "login.html",
        language=language,
        csrf_token=token,
        error=translate(language, error, **values) if error else "",
        username=username,
        next=local_path(request.query.get("next")),
    )
    response = html(text, status=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/login")
    return response


@endpoint("Login form.", permission=None, tag="pages")
async def login_form(request: web.Request) -> web.StreamResponse:
    return _login_page(request)


@endpoint("Log in from the form.", permission=None, tag="pages", csrf=False)
async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    sent = form.get(CSRF_FIELD)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    username = form.get("username")
    password = form.get("password")
    if not (isinstance(sent, str) and expected and secrets.compare_digest(sent, expected)):
        return _login_page(request, error=N_("The form expired; please log in again."), status=403)
    if not isinstance(username, str) or not isinstance(password, str):
        return _login_page(request, error=N_("Enter a username and password."), status=422)
    try:
        login = await password_login(request, username, password)
    except TooManyAttempts as exc:
        page = _login_page(
            request,
            error=N_("Too many wrong passwords: try again in %(minutes)s min."),
            username=username,
            status=429,
            minutes=max(1, math.ceil(exc.retry_after_s / 60)),
        )
        page.headers["Retry-After"] = str(exc.retry_after_s)
        return page
    if login is None:
        return _login_page(
            request, error=N_("Wrong username or password."), username=username, status=401
        )
    response = web.Response(status=303, headers={"Location": local_path(form.get("next"))})
    set_session_cookie(request, response, login.secret)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@endpoint("Log out from the page.", permission=Permission.SESSION, tag="pages")
async def logout_submit(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=303, headers={"Location": "/login"})
    await end_session(request, response)
    return response
