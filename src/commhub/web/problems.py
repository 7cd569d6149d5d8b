"""Errors as RFC 9457 problem documents (``application/problem+json``).

Every error the API returns has this shape; validation problems carry an
``errors`` list naming each field at fault, so a client can show the message
next to the right input. This module renders nothing else: ``web/failures.py``
decides between this document and the console's error page.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from commhub.channels import ChannelUnavailable, OriginateRejected
from commhub.domain.contacts import FieldError
from commhub.domain.pagination import CursorError
from commhub.services.errors import Conflict, Forbidden, InvalidInput, NotFound

PROBLEM_JSON = "application/problem+json"

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
