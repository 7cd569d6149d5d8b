"""Each user's own settings: the console's language and time zone, and their password."""

from __future__ import annotations

import math

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.services import accounts
from commhub.services.errors import InvalidInput
from commhub.web.api.session import TooManyAttempts, change_own_password
from commhub.web.endpoints import endpoint
from commhub.web.keys import DATABASE, SETTINGS
from commhub.web.ui import flash
from commhub.web.ui.formatting import zone_names
from commhub.web.ui.forms import Form, read_form
from commhub.web.ui.i18n import N_
from commhub.web.ui.render import page, translate, viewer


@endpoint("Profile: language, time zone, password.", permission=Permission.SESSION, tag="pages")
async def profile_page(request: web.Request) -> web.StreamResponse:
    return await _profile_page(request)


@endpoint(
    "Save your language and time zone, or change your password.",
    permission=Permission.SESSION,
    tag="pages",
)
async def profile_submit(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if form.get("action") == "password":
        return await _change_password(request, form)
    me = await viewer(request)
    locale = form.get("locale", "")
    time_zone = form.get("time_zone", "")
    try:
        await accounts.update_user(
            request.app[DATABASE], me.user.id, locale=locale, time_zone=time_zone
        )
    except InvalidInput as refused:
        return await _profile_page(
            request, chosen={"locale": locale, "time_zone": time_zone}, error=str(refused)
        )
    raise flash.redirect("/profile", "Your language and time zone are saved.")


async def _change_password(request: web.Request, form: Form) -> web.StreamResponse:
    new = form.get("new_password", "")
    if new != form.get("repeat_password", ""):
        return await _profile_page(
            request, password_error=N_("The new password and its repetition differ.")
        )
    try:
        await change_own_password(request, current=form.get("current_password", ""), new=new)
    except TooManyAttempts as exc:
        response = await _profile_page(
            request,
            password_error=N_("Too many wrong passwords: try again in %(minutes)s min."),
            status=429,
            minutes=max(1, math.ceil(exc.retry_after_s / 60)),
        )
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    except InvalidInput as refused:
        return await _profile_page(
            request, password_error=N_("Not changed: %(reason)s"), reason=str(refused)
        )
    raise flash.redirect(
        "/profile", "Your password is changed; your other browser sessions are logged out."
    )


async def _profile_page(
    request: web.Request,
    *,
    chosen: Form | None = None,
    error: str = "",
    password_error: str = "",
    status: int | None = None,
    **values: object,
) -> web.Response:
    me = await viewer(request)
    if chosen is None:
        chosen = {"locale": me.user.locale or "", "time_zone": me.user.time_zone or ""}
    refused = bool(error or password_error)
    return await page(
        request,
        "profile.html",
        section="profile",
        status=status or (422 if refused else 200),
        chosen=chosen,
        zones=zone_names(),
        hub_zone=request.app[SETTINGS].time_zone,
        error=error,
        password_error=translate(me.language, password_error, **values) if password_error else "",
    )
