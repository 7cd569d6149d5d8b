"""Hostile input through the real app: a 4xx problem naming the field, never a 500.

Extreme dates, JSON nested to exhaust recursion, integers beyond int64 in a
body, a path or a query, non-JSON numbers, and ids written in digits other
than ASCII.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]
PROBLEM = "application/problem+json"


def _call(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": "call",
        "direction": "in",
        "status": "answered",
        "external_id": "hostile-1",
        "occurred_at": "2026-11-02T10:00:00Z",
    }
    body.update(fields)
    return body


async def _problem(response: Any, status: int) -> dict[str, Any]:
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == PROBLEM, text
    assert "Traceback" not in text
    document: dict[str, Any] = await response.json()
    return document


def _fields(problem: dict[str, Any]) -> list[str]:
    return [error["field"] for error in problem.get("errors", [])]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred_at", "0001-01-01T00:00:00Z"),
        ("occurred_at", "9999-12-31T23:59:59Z"),
        ("occurred_at", "0001-01-01T00:00:00+14:00"),
        ("occurred_at", "9999-12-31T23:59:59-12:00"),
        ("occurred_at", "1969-12-31T23:59:59Z"),
        ("occurred_at", "2101-01-01T00:00:00Z"),
        ("occurred_at", "2026-11-02T10:00:00"),  # no time zone
        ("answered_at", "9999-12-31T23:59:59Z"),
        ("ended_at", "0001-01-01T00:00:00Z"),
    ],
)
async def test_dates_outside_the_hubs_span_are_refused_by_field(
    client: Client, manager: dict[str, str], field: str, value: str
) -> None:
    made = await client.post("/api/v1/interactions", json=_call(**{field: value}), headers=manager)
    assert _fields(await _problem(made, 422)) == [field]


async def test_dates_at_the_edges_of_the_span_are_kept(
    client: Client, manager: dict[str, str]
) -> None:
    for n, moment in enumerate(["1970-01-01T00:00:00Z", "2100-12-31T23:59:59Z"]):
        made = await client.post(
            "/api/v1/interactions",
            json=_call(external_id=f"edge-{n}", occurred_at=moment),
            headers=manager,
        )
        assert made.status == 201, await made.text()


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-12:00",
        "9999-12-31",
        "2026-11-01T00:00:00",
        "99999999999999999999",
    ],
)
@pytest.mark.parametrize("name", ["since", "until"])
async def test_time_filters_at_the_extremes_are_refused(
    client: Client, manager: dict[str, str], name: str, value: str
) -> None:
    listed = await client.get("/api/v1/interactions", params={name: value}, headers=manager)
    assert _fields(await _problem(listed, 422)) == [f"query.{name}"]


@pytest.mark.parametrize("depth", [40, 900, 5000, 100_000])
async def test_deeply_nested_json_is_a_bad_request(
    client: Client, manager: dict[str, str], depth: int
) -> None:
    nested = '{"a":' * depth + "1" + "}" * depth
    body = '{"channel":"call","direction":"in","status":"answered","external_id":"x",'
    body += '"occurred_at":"2026-11-02T10:00:00Z","extra":' + nested + "}"
    for raw in (body, "[" * depth + "]" * depth):
        made = await client.post(
            "/api/v1/interactions",
            data=raw.encode(),
            headers={**manager, "Content-Type": "application/json"},
        )
        await _problem(made, 400)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_numbers_json_does_not_have_are_refused(
    client: Client, manager: dict[str, str], literal: str
) -> None:
    raw = (
        '{"channel":"call","direction":"in","status":"answered","external_id":"x",'
        f'"occurred_at":"2026-11-02T10:00:00Z","extra":{{"score":{literal}}}}}'
    )
    made = await client.post(
        "/api/v1/interactions",
        data=raw.encode(),
        headers={**manager, "Content-Type": "application/json"},
    )
    problem = await _problem(made, 400 if literal != "1e400" else 422)
    if literal == "1e400":
        assert _fields(problem) == ["extra.score"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/interactions", {"operator_id": "99999999999999999999"}, "query.operator_id"),
        ("/api/v1/interactions", {"contact_id": "-99999999999999999999"}, "query.contact_id"),
        ("/api/v1/calls/missed", {"operator_id": str(2**63)}, "query.operator_id"),
        ("/api/v1/contacts", {"cursor": "99999999999999999999"}, "query.cursor"),
        ("/api/v1/contacts", {"cursor": "١٢"}, "query.cursor"),
        ("/api/v1/emails/unmatched", {"cursor": "١"}, "query.cursor"),
    ],
)
async def test_integers_beyond_int64_in_a_query_are_refused_by_field(
    client: Client, admin: dict[str, str], path: str, params: dict[str, str], field: str
) -> None:
    listed = await client.get(path, params=params, headers=admin)
    assert _fields(await _problem(listed, 422)) == [field]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/contacts", {"name": "x", "owner_id": 2**64}),
        ("PATCH", "/api/v1/contacts/1", {"owner_id": 2**64}),
        ("POST", "/api/v1/contacts/1/merge", {"source_ids": [2**70]}),
        ("POST", "/api/v1/calls", {"contact_id": 2**63}),
        ("PATCH", "/api/v1/users/1", {"display_name": "x", "password": None, "role": None}),
    ],
)
async def test_integers_beyond_int64_in_a_body_are_refused_by_field(
    client: Client, admin: dict[str, str], method: str, path: str, body: dict[str, Any]
) -> None:
    made = await client.request(method, path, json=body, headers=admin)
    text = await made.text()
    assert made.status < 500, text
    if method == "PATCH" and path.startswith("/api/v1/users"):
        return  # the control: a plain body goes through
    problem = await _problem(made, 422)
    assert _fields(problem) and all(field.split(".")[0] in body for field in _fields(problem)), (
        problem
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/contacts/١",
        "/api/v1/contacts/１",
        "/api/v1/contacts/१",
        "/api/v1/contacts/99999999999999999999",
        "/api/v1/contacts/9223372036854775808",
        "/api/v1/contacts/-1",
        "/api/v1/contacts/١/timeline",
        "/api/v1/users/١",
        "/api/v1/emails/١",
        "/api/v1/emails/1/attachments/١",
        "/api/v1/sms/99999999999999999999",
        "/api/v1/imports/١",
        "/api/v1/emails/failures/١/raw",
    ],
)
async def test_ids_in_paths_are_ascii_digits_within_int64(
    client: Client, admin: dict[str, str], path: str
) -> None:
    method = "PATCH" if path.startswith("/api/v1/users/") else "GET"
    made = await client.request(method, path, json={} if method == "PATCH" else None, headers=admin)
    await _problem(made, 404)


async def test_unicode_digits_never_open_contact_one(client: Client, admin: dict[str, str]) -> None:
    made = await client.post("/api/v1/contacts", json={"name": "First"}, headers=admin)
    assert (await made.json())["id"] == 1
    assert (await client.get("/api/v1/contacts/1", headers=admin)).status == 200
    for digit in ("١", "۱", "१", "১", "１"):
        await _problem(await client.get(f"/api/v1/contacts/{digit}", headers=admin), 404)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/contacts", {"name": "Iv\x00an"}, "name"),
        ("/api/v1/contacts", {"name": "Ivan", "extra": {"k\x00": "v"}}, "extra"),
        ("/api/v1/auth/login", {"username": "\x00", "password": "+79161234567"}, "username"),
        ("/api/v1/interactions", _call(summary="a\x00b"), "summary"),
    ],
)
async def test_the_nul_character_is_refused_by_field(
    client: Client, manager: dict[str, str], path: str, body: dict[str, Any], field: str
) -> None:
    made = await client.post(path, json=body, headers=manager)
    assert _fields(await _problem(made, 422)) == [field]


async def test_the_nul_character_in_an_address_is_a_bad_request(
    client: Client, manager: dict[str, str]
) -> None:
    for path in (
        "/api/v1/contacts?q=%00",
        "/api/v1/interactions?queue=a%00",
        "/api/v1/contacts/%00",
    ):
        await _problem(await client.get(path, headers=manager), 400)
