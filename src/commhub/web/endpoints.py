"""Endpoint declarations: who may call a handler and what it takes and returns.

Each API handler is wrapped by :func:`endpoint`, which records an
:class:`EndpointSpec`. The auth middleware denies any route without one (deny
by default), and the OpenAPI document is generated from the same specs, so
the document cannot drift from the routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from commhub.domain.identifiers import parse_id
from commhub.domain.roles import Permission
from commhub.web.json_values import JsonValueError, check_values, parse_json
from commhub.web.problems import Problem, from_validation, invalid

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SPEC_ATTRIBUTE = "__commhub_endpoint__"
MAX_JSON_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """What the OpenAPI document and the auth middleware know about a handler.

    ``permission=None`` marks a public endpoint (login, health, the spec itself).
    ``csrf=False`` exempts a cookie-authenticated unsafe request from the CSRF
    check; only the login form, which has no session yet, needs it.
    """

    summary: str
    permission: Permission | None
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    content_type: str = "application/json"
    multipart: dict[str, str] | None = None
    csrf: bool = True


def endpoint(
    summary: str,
    *,
    permission: Permission | None,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    content_type: str = "application/json",
    multipart: dict[str, str] | None = None,
    csrf: bool = True,
) -> Callable[[Handler], Handler]:
    """Declare a handler's permission and schemas."""
    spec = EndpointSpec(
        summary=summary,
        permission=permission,
        tag=tag,
        body=body,
        query=query,
        response=response,
        status=status,
        content_type=content_type,
        multipart=multipart,
        csrf=csrf,
    )

    def mark(handler: Handler) -> Handler:
        setattr(handler, SPEC_ATTRIBUTE, spec)
        return handler

    return mark


def spec_of(handler: object) -> EndpointSpec | None:
    found = getattr(handler, SPEC_ATTRIBUTE, None)
    return found if isinstance(found, EndpointSpec) else None


async def read_body(request: web.Request, model: type[M], *, max_bytes: int = MAX_JSON_BYTES) -> M:
    """The JSON body validated as ``model``; 415/400/413/422 problems otherwise.

    ``max_bytes`` may exceed the app's usual limit for a body that carries
    files (an e-mail's attachments); it is read from the stream, bounded.
    """
    if request.content_type != "application/json":
        raise Problem(415, "send the body as application/json")
    if request.content_length is not None and request.content_length > max_bytes:
        raise Problem(413, f"JSON bodies are limited to {max_bytes} bytes")
    raw = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        raw += chunk
        if len(raw) > max_bytes:
            raise Problem(413, f"JSON bodies are limited to {max_bytes} bytes")
    try:
        data = parse_json(bytes(raw))
    except JsonValueError as exc:
        raise _value_problem(exc, prefix="") from None
    except ValueError as exc:
        raise Problem(400, f"body is not valid JSON: {exc}") from None
    try:
        validated = model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, prefix="") from None
    _check_validated(validated, prefix="")
    return validated


def read_query(request: web.Request, model: type[M]) -> M:
    """Query parameters validated as ``model``; unknown parameters are rejected."""
    values: dict[str, Any] = {}
    for key in request.query:
        items = request.query.getall(key)
        values[key] = items if len(items) > 1 else items[0]
    try:
        validated = model.model_validate(values)
    except ValidationError as exc:
        raise from_validation(exc, prefix="query.") from None
    _check_validated(validated, prefix="query.")
    return validated


def _check_validated(model: BaseModel, *, prefix: str) -> None:
    """Refuse what validation let through but no column takes (a string read as a huge int)."""
    try:
        check_values(model.model_dump())
    except JsonValueError as exc:
        raise _value_problem(exc, prefix=prefix) from None


def _value_problem(exc: JsonValueError, *, prefix: str) -> Problem:
    field = exc.field if exc.field == "body" else f"{prefix}{exc.field}"
    if exc.status != 422:
        return Problem(
            exc.status, f"{field}: {exc.message}", errors=[{"field": field, "message": exc.message}]
        )
    return invalid(field, exc.message)


def json_response(model: BaseModel, *, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )


def path_id(request: web.Request, name: str = "id") -> int:
    """The record id in the path: ASCII digits within int64, else 404 (nothing has that id)."""
    raw = request.match_info[name]
    found = parse_id(raw)
    if found is None:
        raise Problem(404, f"no such {name}: {raw[:40]!r}")
    return found
