"""The OpenAPI 3.1 document, generated from the routes and their endpoint specs.

Built from the live router, so every route the app serves is in the document
and nothing else is; request and response schemas come from the same
pydantic models that validate the traffic.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from commhub.web.endpoints import EndpointSpec, endpoint, spec_of
from commhub.web.problems import PROBLEM_JSON

API_PREFIX = "/api/v1"
_PARAM = re.compile(r"{(\w+)(?::[^}]*)?}")
REF_TEMPLATE = "#/components/schemas/{model}"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `errors` names each field at fault.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
    },
    "required": ["title", "status", "detail"],
}


def build_document(app: web.Application, *, version: str) -> dict[str, Any]:
    """The OpenAPI document of every route under /api/v1 in ``app``."""
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if not path or not path.startswith(API_PREFIX) or route.method == "HEAD":
            continue
        spec = spec_of(route.handler)
        if spec is None:
            continue
        openapi_path = _PARAM.sub(r"{\1}", path)
        paths.setdefault(openapi_path, {})[route.method.lower()] = _operation(
            route.method, openapi_path, spec, schemas
        )
    return {
        "openapi": "3.1.0",
        "info": {"title": "commhub API", "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "commhub_session"},
            },
        },
    }


def _operation(
    method: str, path: str, spec: EndpointSpec, schemas: dict[str, Any]
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": spec.summary,
        "tags": [spec.tag],
        "operationId": method.lower() + "_" + re.sub(r"\W+", "_", path).strip("_"),
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
            for name in _PARAM.findall(path)
        ],
        "responses": _responses(spec, schemas),
    }
    if spec.permission is None:
        operation["security"] = []
    else:
        operation["security"] = [{"bearer": []}, {"session": []}]
        operation["x-permission"] = spec.permission.value
    if spec.query is not None:
        operation["parameters"] += _query_parameters(spec.query, schemas)
    if spec.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(spec.body, schemas)}},
        }
    elif spec.multipart is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            name: {"type": "string", "description": text}
                            | ({"format": "binary"} if name == "file" else {})
                            for name, text in spec.multipart.items()
                        },
                    }
                }
            },
        }
    return operation


def _responses(spec: EndpointSpec, schemas: dict[str, Any]) -> dict[str, Any]:
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    ok: dict[str, Any] = {"description": "Success"}
    if spec.response is not None:
        ok["content"] = {"application/json": {"schema": _ref(spec.response, schemas)}}
    elif spec.status != 204 and spec.content_type != "application/json":
        ok["content"] = {spec.content_type: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(spec.status): ok}
    if spec.permission is not None:
        responses["401"] = {"description": "Not authenticated", "content": problem}
        responses["403"] = {
            "description": "Role not allowed or CSRF token wrong",
            "content": problem,
        }
    if spec.body is not None or spec.query is not None or spec.multipart is not None:
        responses["422"] = {"description": "Invalid input", "content": problem}
    responses["default"] = {"description": "Error", "content": problem}
    return responses


def _ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = definition
    schemas[model.__name__] = schema
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = definition
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k != "description"},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


@endpoint("This document.", permission=None, tag="meta")
async def openapi_document(request: web.Request) -> web.StreamResponse:
    from importlib.metadata import version

    return web.json_response(build_document(request.app, version=version("commhub")))
