"""The served OpenAPI document is valid and lists exactly the API's routes."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

Client = TestClient[Any, Any]


async def test_openapi_document_is_valid_and_matches_the_routes(client: Client) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    validate(document)
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    served = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path") or ""
        if route.method != "HEAD" and path.startswith("/api/v1/"):
            served.add((route.method, re.sub(r"{(\w+)[^}]*}", r"{\1}", path)))
    assert documented == served
    create = document["paths"]["/api/v1/contacts"]["post"]
    schema_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.rsplit("/", 1)[-1] in document["components"]["schemas"]
    assert create["x-permission"] == "contacts.write"
    assert document["paths"]["/api/v1/health"]["get"]["security"] == []
