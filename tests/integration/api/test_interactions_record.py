"""POST /api/v1/interactions: whose record it is, what a recording reference may be,
and ids that name nothing — each refused by field, never a 500."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from app_fixtures import Account
from commhub.domain.roles import Role

Client = TestClient[Any, Any]


async def _user_id(client: Client, headers: dict[str, str]) -> int:
    me = await client.get("/api/v1/auth/me", headers=headers)
    return int((await me.json())["user"]["id"])


async def _contact(client: Client, headers: dict[str, str]) -> int:
    made = await client.post(
        "/api/v1/contacts", json={"name": "Ivan", "phones": ["+79161234567"]}, headers=headers
    )
    assert made.status == 201, await made.text()
    return int((await made.json())["id"])


def _call(n: int, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": "call",
        "direction": "in",
        "status": "answered",
        "external_id": f"rec-{n}",
        "occurred_at": "2026-11-02T10:00:00Z",
        "from_address": "+79161234567",
    }
    body.update(fields)
    return body


def _fields(problem: dict[str, Any]) -> list[str]:
    return [error["field"] for error in problem.get("errors", [])]


async def test_operator_records_only_their_own_interactions(
    client: Client, accounts: dict[Role, Account]
) -> None:
    operator, manager = accounts[Role.OPERATOR].auth, accounts[Role.MANAGER].auth
    operator_id, manager_id = await _user_id(client, operator), await _user_id(client, manager)

    refused = await client.post(
        "/api/v1/interactions", json=_call(1, operator_id=manager_id), headers=operator
    )
    assert refused.status == 403
    assert refused.content_type == "application/problem+json"
    assert _fields(await refused.json()) == ["operator_id"]

    own = await client.post("/api/v1/interactions", json=_call(2), headers=operator)
    assert own.status == 201, await own.text()
    assert (await own.json())["operator_id"] is None  # nobody's: a queue's call, say

    named = await client.post(
        "/api/v1/interactions", json=_call(3, operator_id=operator_id), headers=operator
    )
    assert named.status == 201

    for_operator = await client.post(
        "/api/v1/interactions", json=_call(4, operator_id=operator_id), headers=manager
    )
    assert for_operator.status == 201, await for_operator.text()
    assert (await for_operator.json())["operator_id"] == operator_id

    listed = await client.get("/api/v1/interactions", headers=accounts[Role.ADMIN].auth)
    ids = {item["external_id"]: item["operator_id"] for item in (await listed.json())["items"]}
    assert ids == {"rec-2": None, "rec-3": operator_id, "rec-4": operator_id}


async def test_recording_references_are_file_names_not_urls_or_paths(
    client: Client, operator: dict[str, str]
) -> None:
    for n, reference in enumerate(
        [
            "https://evil.example.com/x.wav",
            "http://evil.example.com/x.wav",
            "//evil.example.com/x.wav",
            "javascript:alert(1)",
            "../../etc/passwd",
            "2026/../../x.wav",
            "/var/spool/asterisk/monitor/x.wav",
            "C:\\recordings\\x.wav",
            "\\\\host\\share\\x.wav",
            "a\nb.wav",
            "",
        ]
    ):
        made = await client.post(
            "/api/v1/interactions", json=_call(n, recording_ref=reference), headers=operator
        )
        assert made.status == 422, (reference, await made.text())
        assert _fields(await made.json()) == ["recording_ref"], reference

    for n, reference in enumerate(["17953.1.wav", "2026/12/04/out-201-17953.1.wav"], start=100):
        made = await client.post(
            "/api/v1/interactions", json=_call(n, recording_ref=reference), headers=operator
        )
        assert made.status == 201, await made.text()
        assert (await made.json())["recording_ref"] == reference


async def test_ids_that_name_nothing_are_refused_by_field(
    client: Client, manager: dict[str, str]
) -> None:
    contact_id = await _contact(client, manager)
    cases = [
        ({"contact_id": 999_999}, "contact_id"),
        ({"operator_id": 999_999}, "operator_id"),
        ({"contact_id": 2**63 - 1}, "contact_id"),
        ({"contact_id": 2**63}, "contact_id"),
        ({"operator_id": -(2**64)}, "operator_id"),
        ({"duration_s": 10**30}, "duration_s"),
        ({"extra": {"n": 10**20}}, "extra.n"),
    ]
    for n, (fields, field) in enumerate(cases):
        made = await client.post("/api/v1/interactions", json=_call(n, **fields), headers=manager)
        assert made.status == 422, (fields, await made.text())
        assert _fields(await made.json()) == [field], fields
    kept = await client.post(
        "/api/v1/interactions", json=_call(99, contact_id=contact_id), headers=manager
    )
    assert kept.status == 201


async def test_a_merged_contact_is_named_in_the_refusal(
    client: Client, manager: dict[str, str]
) -> None:
    kept = await _contact(client, manager)
    gone = await client.post("/api/v1/contacts", json={"name": "Ivan 2"}, headers=manager)
    gone_id = (await gone.json())["id"]
    merged = await client.post(
        f"/api/v1/contacts/{kept}/merge", json={"source_ids": [gone_id]}, headers=manager
    )
    assert merged.status == 200, await merged.text()
    made = await client.post(
        "/api/v1/interactions", json=_call(1, contact_id=gone_id), headers=manager
    )
    assert made.status == 422
    problem = await made.json()
    assert _fields(problem) == ["contact_id"] and str(kept) in problem["detail"]
