"""Error pages for browsers: the same refusal the API gives, as a page with a way back.

A console address answers HTML in the reader's language whatever went wrong
(a bad form, a missing card, a refused role, a body too large, a service's
refusal); only a client that asks for JSON alone gets the problem document.
"""

from __future__ import annotations

from aiohttp import web

from commhub.models import User
from commhub.services import users
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
    try:
        async with request.app[DATABASE]() as session:
            if PRINCIPAL in request:
                user_id: int | None = request[PRINCIPAL].user_id
            else:
                cookie = request.cookies.get(SESSION_COOKIE)
                caller = await users.principal_from_session(session, cookie) if cookie else None
                user_id = None if caller is None else caller.user_id
            user = None if user_id is None else await session.get(User, user_id)
    except Exception:  # an error page must render even when the database cannot answer
        return None
    return None if user is None else user.locale
