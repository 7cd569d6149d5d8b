"""Error pages for browsers: the same refusal the API gives, as a page with a way back."""

from __future__ import annotations

from aiohttp import web

from commhub.web.ui.render import html, language_of, render_text


def error_page(
    request: web.Request, status: int, title: str, detail: str, headers: dict[str, str]
) -> web.Response:
    language = language_of(request, None)
    text = render_text(
        language, "error.html", language=language, status=status, title=title, detail=detail
    )
    response = html(text, status=status)
    response.headers.update(headers)
    return response
