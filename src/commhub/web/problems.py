"""Errors as RFC 9457 problem documents (``application/problem+json``).

Every error the API returns has this shape; validation problems carry an
``errors`` list naming each field at fault, so a client can show the message
next to the right input.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from commhub.channels import ChannelUnavailable, OriginateRejected
from commhub.domain.contacts import FieldError
from commhub.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from commhub.store.pagination import CursorError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    502: "Bad gateway",
    503: "Service unavailable",
}


class Problem(Exception):
    """An error response; raise it from a handler."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    async def answer(self, request: web.Request) -> web.Response:
        """A page for a console address, the problem document otherwise."""
        if wants_page(request):
            from commhub.web.ui.errors import error_page  # the console renders its own

            return await error_page(request, self.status, self.detail, self.headers)
        return self.response(request)

    def response(self, request: web.Request) -> web.Response:
        """The problem document (``application/problem+json``)."""
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": _TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
            "instance": request.path,
        }
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return web.Response(
            status=self.status,
            text=json.dumps(body, ensure_ascii=False),
            content_type=PROBLEM_JSON,
            headers=self.headers,
        )


def wants_page(request: web.Request) -> bool:
    """A console address answers an HTML page, unless the client asks for JSON alone.

    The API, gateway callbacks and static files always answer problem documents.
    """
    if request.path.startswith(("/api/", "/hooks/", "/static/")):
        return False
    accept = request.headers.get("Accept", "").lower()
    asks_json = "json" in accept and "text/html" not in accept and "*/*" not in accept
    return not asks_json


def invalid(field: str, message: str) -> Problem:
    """A 422 naming one field."""
    return Problem(422, f"{field}: {message}", errors=[{"field": field, "message": message}])


def from_validation(exc: ValidationError, prefix: str = "") -> Problem:
    """A pydantic error list as a 422 naming each field (``phones.1``, ``query.limit``)."""
    errors = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        field = f"{prefix}{location}" if location else prefix.rstrip(".") or "body"
        errors.append({"field": field, "message": error["msg"]})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    return Problem(422, detail, errors=errors)


def from_service_error(exc: Exception) -> Problem | None:
    """Map the service layer's errors to problems; ``None`` for anything unknown."""
    match exc:
        case NotFound(merged_into=int(target)):
            return Problem(404, str(exc), merged_into=target)
        case NotFound():
            return Problem(404, str(exc))
        case Forbidden():
            return Problem(403, str(exc), errors=[{"field": exc.field, "message": str(exc)}])
        case Conflict():
            return Problem(409, str(exc), errors=[{"field": exc.field, "message": str(exc)}])
        case InvalidInput() | FieldError():
            return invalid(exc.field, str(exc))
        case CursorError():
            return invalid("cursor", str(exc))
        case ChannelUnavailable():
            return Problem(503, str(exc), headers={"Retry-After": "10"})
        case OriginateRejected():
            return Problem(502, f"the PBX refused the call: {exc}")
    return None


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a problem document; never leak a traceback."""
    if "\x00" in request.path or any("\x00" in k + v for k, v in request.query.items()):
        # No PostgreSQL text can hold U+0000: refused here for every page and endpoint.
        return await Problem(400, "the address holds the NUL character (%00)").answer(request)
    try:
        return await handler(request)
    except Problem as problem:
        return await problem.answer(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return await Problem(exc.status, detail or exc.reason, headers=headers).answer(request)
    except ValidationError as exc:
        return await from_validation(exc).answer(request)
    except Exception as exc:
        mapped = from_service_error(exc)
        if mapped is not None:
            return await mapped.answer(request)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return await Problem(500, "the server failed to handle this request").answer(request)
