"""Browser pages: the login form and a minimal home page (the console comes later).

The login form is protected against login CSRF with a double-submit token:
a random value set as a cookie and repeated in a hidden field, which a
cross-site form cannot read.
"""

from __future__ import annotations

import secrets

import jinja2
from aiohttp import web

from commhub.domain.roles import Permission
from commhub.store.schema import User
from commhub.web.api.session import (
    TooManyAttempts,
    check_credentials,
    end_session,
    set_session_cookie,
    start_session,
)
from commhub.web.endpoints import endpoint
from commhub.web.keys import CSRF_FIELD, LOGIN_CSRF_COOKIE, SESSIONS, principal

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("commhub.web", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


def render(name: str, *, status: int = 200, **context: object) -> web.Response:
    return web.Response(
        text=_templates.get_template(name).render(**context),
        status=status,
        content_type="text/html",
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def _login_page(*, error: str = "", username: str = "", status: int = 200) -> web.Response:
    token = secrets.token_urlsafe(32)
    response = render("login.html", csrf_token=token, error=error, username=username, status=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/login")
    return response


@endpoint("Login form.", permission=None, tag="pages")
async def login_form(request: web.Request) -> web.StreamResponse:
    return _login_page()


@endpoint("Log in from the form.", permission=None, tag="pages", csrf=False)
async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    sent = form.get(CSRF_FIELD)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    username = form.get("username")
    password = form.get("password")
    if not (isinstance(sent, str) and expected and secrets.compare_digest(sent, expected)):
        return _login_page(error="The form expired; please log in again.", status=403)
    if not isinstance(username, str) or not isinstance(password, str):
        return _login_page(error="Enter a username and password.", status=422)
    try:
        user = await check_credentials(request, username, password)
    except TooManyAttempts as exc:
        page = _login_page(error=f"{str(exc).capitalize()}.", username=username, status=429)
        page.headers["Retry-After"] = str(exc.retry_after_s)
        return page
    if user is None:
        return _login_page(error="Wrong username or password.", username=username, status=401)
    secret, _csrf = await start_session(request, user)
    response = web.Response(status=303, headers={"Location": "/"})
    set_session_cookie(request, response, secret)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@endpoint("Home page.", permission=Permission.SESSION, tag="pages")
async def home(request: web.Request) -> web.StreamResponse:
    caller = principal(request)
    async with request.app[SESSIONS]() as session:
        user = await session.get(User, caller.user_id)
    return render("home.html", user=user, csrf_token=caller.csrf_token or "")


@endpoint("Log out from the page.", permission=Permission.SESSION, tag="pages")
async def logout_submit(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=303, headers={"Location": "/login"})
    await end_session(request, response)
    return response
