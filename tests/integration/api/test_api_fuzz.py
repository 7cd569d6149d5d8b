"""Fuzz pass: every API operation, with JSON bodies and query parameters drawn from its
own OpenAPI schema and from hostile values, through the real app: never a 500, never
a traceback or Python exception text in a response.

The operations are read from the app's OpenAPI document, so a new endpoint is
fuzzed without a line here. Values follow the schema most of the time (so the
request reaches the handler and the services) and are hostile the rest (dates
at the calendar's ends, integers beyond int64, Unicode digits, NaN, deep
nesting, control characters).

Profiles (``COMMHUB_FUZZ_PROFILE``): ``ci`` (default: derandomised, a fixed
number of examples, a minute or so on both databases) and ``long`` (random,
many more examples, for a night run).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from app_fixtures import Account
from commhub.domain.roles import Role

Client = TestClient[Any, Any]
Json = Any

settings.register_profile(
    "ci",
    max_examples=400,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
PROFILE = os.environ.get("COMMHUB_FUZZ_PROFILE", "ci")
TIMEOUT = 110 if PROFILE == "ci" else 3600

SKIPPED = {
    ("get", "/api/v1/live"),  # a WebSocket: tests/integration/api/test_live_pops.py
    ("post", "/api/v1/imports"),  # multipart spreadsheets: fuzzed with the importer
}
"""Operations whose requests are not JSON bodies or query strings."""

MAX_QUERY_VALUE = 600
"""Bytes of one query value, URL-encoded: a dozen of them stay under aiohttp's 8190."""

OWN_IDS = {("patch", "/api/v1/users/{id}"), ("delete", "/api/v1/tokens/{id}")}
"""Operations that could lock the fuzzing accounts out; their ids avoid 1, 3 and 4
(operator, manager, admin users and tokens) and use the marketer's (2) or none."""

EXCEPTION_TEXT = re.compile(
    r"Traceback|File \"|\b[A-Z][A-Za-z]+(Error|Exception)\b|<class '|sqlalchemy|asyncpg|"
    r"aiosqlite|pydantic_core|\bline \d+, in\b"
)

HOSTILE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "١",
        "١٢٣",
        "１２",
        "99999999999999999999",
        "-9223372036854775809",
        "9223372036854775808",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-12:00",
        "9999-12-31",
        "1e400",
        "NaN",
        "null",
        "\x00",
        "\ud7ff\ufeff\u202e",
        "../../etc/passwd",
        "https://evil.example.com/x",
        '=HYPERLINK("http://x")',
        "a" * 5000,
        "+79161234567",
        "ivan@example.com",
    ]
)
HOSTILE_NUMBER = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 0, -1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
)
HOSTILE = st.one_of(
    HOSTILE_TEXT,
    HOSTILE_NUMBER,
    st.none(),
    st.booleans(),
    st.text(max_size=40),
    st.recursive(
        st.none() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=8,
    ),
)


PLAUSIBLE = st.sampled_from(
    [
        "+79161234567",
        "8 916 123-45-67",
        "ivan@example.com",
        "RU",
        "en",
        "ru",
        "Europe/Moscow",
        "Ivan Petrov",
        "ACME",
        "vip",
        "marketing",
        "201",
        "call-1.wav",
        "2026-11-02T10:00:00Z",
    ]
)
"""Strings the services accept, so a drawn body gets past validation to the writes."""


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    parameters: list[dict[str, Any]]
    body: dict[str, Any] | None

    def __repr__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if (method, path) in SKIPPED:
                continue
            content = operation.get("requestBody", {}).get("content", {})
            found.append(
                Operation(
                    method=method,
                    path=path,
                    parameters=operation.get("parameters", []),
                    body=content.get("application/json", {}).get("schema"),
                )
            )
    return found


class Schemas:
    """Hypothesis strategies for the document's JSON schemas, with hostile values mixed in."""

    def __init__(self, components: dict[str, Any]) -> None:
        self.components = components

    def value(self, schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Json]:
        """Mostly what ``schema`` allows (so requests reach the services), one time in
        eight anything hostile."""
        if depth >= 4:
            return HOSTILE
        return st.integers(min_value=0, max_value=7).flatmap(
            lambda n: HOSTILE if n == 7 else self._conforming(schema, depth)
        )

    def _conforming(self, schema: dict[str, Any], depth: int) -> st.SearchStrategy[Json]:
        if "$ref" in schema:
            return self._conforming(self.components[schema["$ref"].rsplit("/", 1)[-1]], depth)
        if "anyOf" in schema:
            return st.one_of([self._conforming(s, depth) for s in schema["anyOf"]])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        if "const" in schema:
            return st.just(schema["const"])
        kind = schema.get("type")
        maker: dict[str, Callable[[], st.SearchStrategy[Json]]] = {
            "string": lambda: self._string(schema),
            "integer": lambda: st.integers(
                min_value=schema.get("minimum", -5), max_value=schema.get("maximum", 1000)
            ),
            "number": lambda: st.floats(min_value=-1e6, max_value=1e6),
            "boolean": st.booleans,
            "null": st.none,
            "array": lambda: st.lists(
                self.value(schema.get("items", {}), depth + 1),
                max_size=min(schema.get("maxItems", 4), 4),
            ),
            "object": lambda: self._object(schema, depth),
        }
        return maker.get(str(kind), lambda: HOSTILE)()

    def _string(self, schema: dict[str, Any]) -> st.SearchStrategy[Json]:
        if schema.get("format") == "date-time":
            return st.datetimes(
                min_value=datetime(1970, 1, 2),
                max_value=datetime(2100, 12, 30),
                timezones=st.timezones(),
            ).map(lambda d: d.isoformat())
        low, high = schema.get("minLength", 0), min(schema.get("maxLength", 30), 30)
        return st.one_of(
            PLAUSIBLE.filter(lambda text: low <= len(text) <= schema.get("maxLength", 10**6)),
            st.text(min_size=low, max_size=max(low, high)),
        )

    def _object(self, schema: dict[str, Any], depth: int) -> st.SearchStrategy[Json]:
        properties = schema.get("properties", {})
        if not properties:
            return st.dictionaries(st.text(max_size=8), self.value({}, depth + 1), max_size=3)
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {name: self.value(properties[name], depth + 1) for name in required},
            optional={
                name: self.value(sub, depth + 1)
                for name, sub in properties.items()
                if name not in required
            },
        )


def path_ids(operation: Operation) -> st.SearchStrategy[str]:
    small = (
        st.sampled_from(["2"])
        if (operation.method, operation.path) in OWN_IDS
        else (st.integers(min_value=0, max_value=6).map(str))
    )
    hostile = st.sampled_from(
        ["١", "１", "१", "-1", "99999999999999999999", "9223372036854775808", "1e3", "0x1", "%00"]
    )
    return st.one_of(small, hostile)


def query_value(schemas: Schemas, parameter: dict[str, Any]) -> st.SearchStrategy[str]:
    def as_text(value: Json) -> str:
        if isinstance(value, str):
            return value
        return json.dumps(value) if not isinstance(value, bool) else str(value).lower()

    # aiohttp's HTTP parser refuses a request line over 8190 bytes before the app sees
    # it (a 400 of its own); keep every value short enough that the app is what answers.
    return (
        schemas.value(parameter.get("schema", {}))
        .map(as_text)
        .filter(lambda s: "\x00" not in s and len(quote(s)) <= MAX_QUERY_VALUE)
    )


@st.composite
def requests(
    draw: st.DrawFn, schemas: Schemas, ops: list[Operation]
) -> tuple[Operation, str, dict[str, str], Json]:
    operation = draw(st.sampled_from(ops))
    path = operation.path
    query: dict[str, str] = {}
    for parameter in operation.parameters:
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", draw(path_ids(operation)))
        elif parameter.get("required") or draw(st.integers(0, 2)) == 0:
            query[parameter["name"]] = draw(query_value(schemas, parameter))
    body = draw(schemas.value(operation.body)) if operation.body is not None else None
    return operation, path, query, body


async def _send(
    client: Client,
    headers: dict[str, str],
    operation: Operation,
    path: str,
    query: dict[str, str],
    body: Json,
) -> tuple[int, str, str]:
    data = None
    if operation.body is not None:
        data = json.dumps(body, allow_nan=True).encode()
    response = await client.request(
        operation.method.upper(),
        path,
        params=query,
        data=data,
        headers={**headers, "Content-Type": "application/json"} if data is not None else headers,
    )
    return response.status, response.content_type, await response.text()


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATOR])
async def test_no_request_to_the_api_fails_the_server(
    client: Client, accounts: dict[Role, Account], role: Role
) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    schemas = Schemas(document["components"]["schemas"])
    ops = operations(document)
    assert len(ops) > 30  # the document was read, not an empty list fuzzed
    headers = accounts[role].auth
    loop = asyncio.get_running_loop()
    answered: dict[str, set[int]] = {}

    @settings(settings.get_profile(PROFILE))
    @given(request=requests(schemas, ops))
    def no_failure(request: tuple[Operation, str, dict[str, str], Json]) -> None:
        operation, path, query, body = request
        status, content_type, text = asyncio.run_coroutine_threadsafe(
            _send(client, headers, operation, path, query, body), loop
        ).result(timeout=30)
        answered.setdefault(repr(operation), set()).add(status)
        shown = f"{operation!r} {path} {query} {body!r:.300} -> {status}: {text[:300]}"
        assert status != 500, shown
        assert not EXCEPTION_TEXT.search(text), shown
        if status >= 400 and path.startswith("/api/"):
            assert content_type == "application/problem+json", shown

    # Hypothesis runs in a thread; each request runs on this loop, where the app serves.
    await asyncio.to_thread(no_failure)
    if os.environ.get("COMMHUB_FUZZ_REPORT"):
        print({name: sorted(codes) for name, codes in sorted(answered.items())})
    succeeded = [name for name, codes in answered.items() if any(c < 300 for c in codes)]
    allowed = [name for name, codes in answered.items() if codes - {401, 403}]
    # the values reached the handlers, not only 4xx: a fair share of what the role may call
    assert len(succeeded) >= max(5, len(allowed) // 4), (len(allowed), answered)
