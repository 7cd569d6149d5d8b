"""The unsubscribe page a campaign's link opens: public, one click, in the reader's language.

Opening the link (GET) only shows the page with its one button: mail
scanners open links by themselves, and must not unsubscribe anyone
(RFC 8058). The button — or a mail client's own one-click POST with
``List-Unsubscribe=One-Click`` — unsubscribes. The token is the only
credential, so the page shows no more of the person than a masked address.
"""

from __future__ import annotations

from aiohttp import web

from commhub.services import unsubscribes
from commhub.services.errors import NotFound
from commhub.web.endpoints import endpoint
from commhub.web.keys import DATABASE
from commhub.web.ui.render import html, language_of, render_text


@endpoint(
    "The unsubscribe page of a campaign's link (shows; does not unsubscribe).",
    permission=None,
    tag="pages",
)
async def unsubscribe_page(request: web.Request) -> web.StreamResponse:
    try:
        found = await unsubscribes.look_up(request.app[DATABASE], request.match_info["token"])
    except NotFound:
        return _page(request, None, status=404)
    return _page(request, found)


@endpoint(
    "Unsubscribe through a campaign's link: the page's button or a one-click POST.",
    permission=None,
    tag="pages",
    csrf=False,
)
async def unsubscribe(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    how = "one-click POST" if form.get("List-Unsubscribe") == "One-Click" else "the page's button"
    try:
        done = await unsubscribes.unsubscribe(
            request.app[DATABASE], request.match_info["token"], how=how
        )
    except NotFound:
        return _page(request, None, status=404)
    return _page(request, done, done=True)


def _page(
    request: web.Request,
    found: unsubscribes.Subscription | None,
    *,
    done: bool = False,
    status: int = 200,
) -> web.Response:
    language = language_of(request, None)
    text = render_text(
        language,
        "unsubscribe.html",
        language=language,
        found=found,
        done=done,
        token=request.match_info.get("token", ""),
    )
    response = html(text, status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
