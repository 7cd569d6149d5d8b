"""Error pages for browsers: the same refusal the API gives, as a page with a way back.

A console address answers HTML in the reader's language whatever went wrong
(a bad form, a missing card, a refused role, a body too large, a service's
refusal); only a client that asks for JSON alone gets the problem document.
"""

from __future__ import annotations

from aiohttp import web

from commhub.services import accounts
from commhub.web.keys import DATABASE, PRINCIPAL, SESSION_COOKIE
from commhub.web.ui.render import html, language_of, render_text


async def error_page(
    request: web.Request, status: int, detail: str, headers: dict[str, str]
) -> web.Response:
    language = language_of(request, await _chosen_language(request))
    text = render_text(language, "error.html", language=language, status=status, detail=detail)
    response = html(text, status=status)
    response.headers.update(headers)
    return response


async def _chosen_language(request: web.Request) -> str | None:
    """The logged-in reader's language, also on an address no route serves (no login ran)."""
    user_id = request[PRINCIPAL].user_id if PRINCIPAL in request else None
    try:
        return await accounts.chosen_language(
            request.app[DATABASE],
            user_id=user_id,
            session_secret=request.cookies.get(SESSION_COOKIE),
        )
    except Exception:  # an error page must render even when the database cannot answer
        return None
