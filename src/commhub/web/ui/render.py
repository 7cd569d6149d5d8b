"""Rendering a console page: who is looking, in which language, and the page's headers.

One Jinja2 environment per language (the i18n extension bound to that
language's catalog), autoescaping on, strict about undefined names. Every
page gets ``viewer`` (the user, their permissions, the navigation),
``fmt`` (their time zone and language) and ``_``/``ngettext``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from commhub.domain.interactions import is_recording_file
from commhub.domain.roles import Permission, Role, allows
from commhub.models import User
from commhub.services import accounts
from commhub.services.errors import NotFound
from commhub.services.users import Principal
from commhub.web.keys import DATABASE, PRINCIPAL, SETTINGS
from commhub.web.ui import flash
from commhub.web.ui.assets import static_url
from commhub.web.ui.formatting import Formats, zone_or_none
from commhub.web.ui.i18n import LANGUAGES, N_, negotiate, translations

SECURITY_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # No inline script or style anywhere in the console: what a stored name or an
    # e-mail body might smuggle into a page cannot run.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'; object-src 'none'"
    ),
}


@dataclass(frozen=True, slots=True)
class NavItem:
    href: str
    label: str
    """English source text; the template translates it."""
    section: str


NAVIGATION: Final = (
    NavItem("/", N_("Home"), "home"),
    NavItem("/contacts", N_("Contacts"), "contacts"),
    NavItem("/deals", N_("Deals"), "deals"),
    NavItem("/log", N_("Interaction log"), "log"),
    NavItem("/dashboard", N_("Dashboard"), "dashboard"),
    NavItem("/reports/funnel", N_("Funnel"), "funnel"),
    NavItem("/receivables", N_("Receivables"), "receivables"),
    NavItem("/live", N_("Live calls"), "live"),
    NavItem("/imports", N_("Imports"), "imports"),
    NavItem("/campaigns", N_("Campaigns"), "campaigns"),
    NavItem("/segments", N_("Segments"), "segments"),
    NavItem("/templates", N_("Templates"), "templates"),
    NavItem("/admin/users", N_("Users"), "admin-users"),
    NavItem("/admin/channels", N_("Channels"), "admin-channels"),
    NavItem("/admin/outbox", N_("In doubt"), "admin-outbox"),
    NavItem("/admin/pipelines", N_("Pipelines"), "admin-pipelines"),
)
NAV_PERMISSION: Final = {
    "home": Permission.SESSION,
    "contacts": Permission.CONTACTS_READ,
    "deals": Permission.DEALS,
    "log": Permission.INTERACTIONS_LOG,
    "dashboard": Permission.TEAM_RESULTS,
    "funnel": Permission.FUNNEL,
    "receivables": Permission.DEALS,
    "live": Permission.CALLS_WATCH,
    "admin-users": Permission.USERS_MANAGE,
    "admin-channels": Permission.CHANNELS_VIEW,
    "admin-outbox": Permission.OUTBOX_SETTLE,
    "imports": Permission.CONTACTS_IMPORT,
    "campaigns": Permission.CAMPAIGN_RESULTS,
    "segments": Permission.SEGMENTS,
    "templates": Permission.TEMPLATES,
    "admin-pipelines": Permission.PIPELINES,
}


@dataclass(frozen=True, slots=True)
class Viewer:
    """The logged-in user a page is rendered for."""

    user: User
    role: Role
    csrf_token: str
    language: str
    fmt: Formats
    recordings_url: str = ""

    def recording_link(self, reference: str) -> str:
        """Where the browser fetches a call's recording; empty when no URL is configured.

        Only through the configured URL: a reference that is itself a URL or
        climbs out with ``..`` (stored before such references were refused)
        gets no link, so a call record never sends its reader elsewhere.
        """
        relative = reference.lstrip("/")
        if not self.recordings_url or not is_recording_file(relative):
            return ""
        name = relative.rsplit("/", 1)[-1]
        return self.recordings_url.replace("{file}", quote(name)).replace("{path}", quote(relative))

    def can(self, permission: str) -> bool:
        return allows(self.role, Permission(permission))

    @property
    def name(self) -> str:
        return self.user.shown_name

    @property
    def navigation(self) -> list[NavItem]:
        return [item for item in NAVIGATION if allows(self.role, NAV_PERMISSION[item.section])]


def language_of(request: web.Request, chosen: str | None) -> str:
    """The user's choice, else the hub's setting, else the browser's."""
    if chosen in LANGUAGES:
        return chosen
    configured = request.app[SETTINGS].language
    if configured:
        return configured
    return negotiate(request.headers.get("Accept-Language", ""))


def formats_for(request: web.Request, language: str, zone_name: str | None) -> Formats:
    settings = request.app[SETTINGS]
    zone = zone_or_none(zone_name) or ZoneInfo(settings.time_zone)
    return Formats(language=language, zone=zone, region=settings.phone_region)


async def viewer(request: web.Request) -> Viewer:
    """The page's viewer, loaded once per request (the user's name, language, zone)."""
    if _VIEWER in request:
        return request[_VIEWER]
    caller: Principal = request[PRINCIPAL]
    try:
        user = await accounts.user(request.app[DATABASE], caller.user_id)
    except NotFound:  # deleted between authentication and now
        raise web.HTTPSeeOther("/login") from None
    language = language_of(request, user.locale)
    made = Viewer(
        user=user,
        role=caller.role,
        csrf_token=caller.csrf_token or "",
        language=language,
        fmt=formats_for(request, language, user.time_zone),
        recordings_url=request.app[SETTINGS].recordings_url,
    )
    request[_VIEWER] = made
    return made


_VIEWER: Final = web.RequestKey("viewer", Viewer)


@functools.cache
def environment(language: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("commhub.web.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["LANGUAGES"] = LANGUAGES
    env.globals["static_url"] = static_url
    return env


def render_text(language_code: str, template_name: str, /, **context: object) -> str:
    return environment(language_code).get_template(template_name).render(**context)


async def page(
    request: web.Request, template: str, *, status: int = 200, **context: object
) -> web.Response:
    """A console page for the logged-in viewer, with the message a redirect left for it."""
    seen_by = await viewer(request)
    message = flash.take(request)
    notice = None
    if message is not None:
        notice = (message.kind, translate(seen_by.language, message.message, **message.values))
    response = html(
        render_text(
            seen_by.language, template, viewer=seen_by, fmt=seen_by.fmt, notice=notice, **context
        ),
        status=status,
    )
    if message is not None:
        response.del_cookie(flash.FLASH_COOKIE, path="/")
    return response


def html(text: str, *, status: int = 200) -> web.Response:
    return web.Response(
        text=text, status=status, content_type="text/html", headers=SECURITY_HEADERS
    )


def translate(language: str, message: str, **values: object) -> str:
    """``message`` (English source text with ``%(name)s`` fields) in ``language``."""
    text = translations(language).gettext(message)
    return text % values if values else text
