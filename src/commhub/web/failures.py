"""Every failure a request meets, answered in its reader's terms.

The middleware here sits above both the API's problem documents
(``web/problems.py``) and the console's error pages (``web/ui/errors.py``), so
neither has to know the other (they used to import each other in a cycle).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError

from commhub.web.problems import Problem, from_service_error, from_validation
from commhub.web.ui.errors import error_page

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def answer(request: web.Request, problem: Problem) -> web.Response:
    """A page for a console address, the problem document otherwise."""
    if wants_page(request):
        return await error_page(request, problem.status, problem.detail, problem.headers)
    return problem.response(request)


def wants_page(request: web.Request) -> bool:
    """A console address answers an HTML page, unless the client asks for JSON alone.

    The API, gateway callbacks and static files always answer problem documents.
    """
    if request.path.startswith(("/api/", "/hooks/", "/static/")):
        return False
    accept = request.headers.get("Accept", "").lower()
    asks_json = "json" in accept and "text/html" not in accept and "*/*" not in accept
    return not asks_json


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a problem document or an error page; never leak a traceback."""
    if "\x00" in request.path or any("\x00" in k + v for k, v in request.query.items()):
        # No PostgreSQL text can hold U+0000: refused here for every page and endpoint.
        return await answer(request, Problem(400, "the address holds the NUL character (%00)"))
    try:
        return await handler(request)
    except Problem as problem:
        return await answer(request, problem)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return await answer(request, Problem(exc.status, detail or exc.reason, headers=headers))
    except ValidationError as exc:
        return await answer(request, from_validation(exc))
    except Exception as exc:
        mapped = from_service_error(exc)
        if mapped is not None:
            return await answer(request, mapped)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return await answer(request, Problem(500, "the server failed to handle this request"))
