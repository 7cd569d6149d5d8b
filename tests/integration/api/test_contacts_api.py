"""Contacts over the API: create, find in any format, edit, merge, read the card."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]


async def _create(client: Client, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/contacts", json=body, headers=auth)
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def test_created_contact_is_found_by_phone_in_any_format(
    client: Client, operator: dict[str, str]
) -> None:
    created = await _create(
        client,
        operator,
        name="Ivan Petrov",
        company="Romashka LLC",
        phones=["8 (916) 123-45-67", "+44 20 7946 0958"],
        emails=["Ivan.Petrov@Example.COM"],
        tags=["VIP", "vip", "Moscow"],
        consents=[{"channel": "sms", "purpose": "marketing", "granted": True}],
    )
    assert [p["e164"] for p in created["phones"]] == ["+79161234567", "+442079460958"]
    assert created["phones"][0]["international"] == "+7 916 123-45-67"
    assert created["emails"] == ["ivan.petrov@example.com"]
    assert created["tags"] == ["moscow", "vip"]
    assert created["consents"][0]["source"] == "api:operator"
    for phone in ("+79161234567", "89161234567", "8-916-123-45-67", "0079161234567"):
        found = await client.get("/api/v1/contacts", params={"phone": phone}, headers=operator)
        assert [c["id"] for c in (await found.json())["items"]] == [created["id"]], phone
    by_mail = await client.get(
        "/api/v1/contacts", params={"email": "IVAN.petrov@example.com"}, headers=operator
    )
    assert [c["id"] for c in (await by_mail.json())["items"]] == [created["id"]]
    by_name = await client.get("/api/v1/contacts", params={"q": "petr"}, headers=operator)
    assert [c["id"] for c in (await by_name.json())["items"]] == [created["id"]]
    by_company = await client.get(
        "/api/v1/contacts", params={"company": "romashka"}, headers=operator
    )
    assert [c["id"] for c in (await by_company.json())["items"]] == [created["id"]]


async def test_bad_phone_names_the_field_and_writes_nothing(
    client: Client, operator: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/contacts",
        json={"name": "Broken", "phones": ["+79161234567", "12-AB-34"]},
        headers=operator,
    )
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["errors"][0]["field"] == "phones[1]"
    assert problem["status"] == 422
    listing = await client.get("/api/v1/contacts", params={"q": "broken"}, headers=operator)
    assert (await listing.json())["items"] == []


async def test_unknown_field_and_bad_json_are_problems(
    client: Client, operator: dict[str, str]
) -> None:
    unknown = await client.post(
        "/api/v1/contacts", json={"name": "X", "phone": "+79161234567"}, headers=operator
    )
    assert unknown.status == 422
    assert (await unknown.json())["errors"][0]["field"] == "phone"
    broken = await client.post(
        "/api/v1/contacts",
        data=b"{not json",
        headers={**operator, "Content-Type": "application/json"},
    )
    assert broken.status == 400
    assert broken.content_type == "application/problem+json"
    bad_limit = await client.get("/api/v1/contacts", params={"limit": "0"}, headers=operator)
    assert bad_limit.status == 422
    assert (await bad_limit.json())["errors"][0]["field"] == "query.limit"


async def test_edit_replaces_phones_and_keeps_the_rest(
    client: Client, operator: dict[str, str]
) -> None:
    created = await _create(
        client, operator, name="Anna", phones=["+79035550101"], emails=["anna@example.com"]
    )
    response = await client.patch(
        f"/api/v1/contacts/{created['id']}",
        json={"phones": ["8 903 555 01 02"], "company": "Vector"},
        headers=operator,
    )
    assert response.status == 200, await response.text()
    edited = await response.json()
    assert [p["e164"] for p in edited["phones"]] == ["+79035550102"]
    assert edited["emails"] == ["anna@example.com"]
    assert edited["company"] == "Vector"
    old = await client.get("/api/v1/contacts", params={"phone": "+79035550101"}, headers=operator)
    assert (await old.json())["items"] == []


async def test_merge_moves_points_and_timeline_and_retires_the_source(
    client: Client, manager: dict[str, str]
) -> None:
    keep = await _create(client, manager, name="Ivan", phones=["+79161234567"], tags=["a"])
    dupe = await _create(client, manager, name="I. Petrov", emails=["ivan@example.com"], tags=["b"])
    logged = await client.post(
        "/api/v1/interactions",
        json={
            "channel": "email",
            "direction": "in",
            "status": "received",
            "external_id": "<m1@example.com>",
            "occurred_at": "2026-11-01T10:00:00Z",
            "from_address": "ivan@example.com",
            "subject": "Hello",
        },
        headers=manager,
    )
    assert (await logged.json())["contact_id"] == dupe["id"]
    merged = await client.post(
        f"/api/v1/contacts/{keep['id']}/merge",
        json={"source_ids": [dupe["id"]]},
        headers=manager,
    )
    assert merged.status == 200, await merged.text()
    body = await merged.json()
    assert body["emails"] == ["ivan@example.com"]
    assert body["tags"] == ["a", "b"]
    card = await (await client.get(f"/api/v1/contacts/{keep['id']}", headers=manager)).json()
    assert [i["subject"] for i in card["timeline"]["items"]] == ["Hello"]
    gone = await client.get(f"/api/v1/contacts/{dupe['id']}", headers=manager)
    assert gone.status == 404
    assert (await gone.json())["merged_into"] == keep["id"]


async def test_card_timeline_is_newest_first_and_keyset_paginated(
    client: Client, operator: dict[str, str]
) -> None:
    contact = await _create(client, operator, name="Timeline", phones=["+79161110000"])
    for minute in range(7):
        response = await client.post(
            "/api/v1/interactions",
            json={
                "channel": "call",
                "direction": "in",
                "status": "answered",
                "external_id": f"call-{minute}",
                "occurred_at": f"2026-11-01T10:0{minute}:00+03:00",
                "from_address": "89161110000",
                "duration_s": 60,
            },
            headers=operator,
        )
        assert response.status == 201, await response.text()
    seen: list[str] = []
    url = f"/api/v1/contacts/{contact['id']}/timeline"
    params: dict[str, str] = {"limit": "3"}
    while True:
        page = await (await client.get(url, params=params, headers=operator)).json()
        seen += [item["external_id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [f"call-{m}" for m in reversed(range(7))]
    bad = await client.get(url, params={"cursor": "garbage!"}, headers=operator)
    assert bad.status == 422


async def test_identify_says_match_ambiguous_unknown_and_extension(
    client: Client, operator: dict[str, str]
) -> None:
    one = await _create(client, operator, name="One", phones=["+74951234567"])
    other = await _create(client, operator, name="Other", phones=["+74951234567"])
    solo = await _create(client, operator, name="Solo", phones=["+79161234567"])

    async def ask(address: str) -> dict[str, Any]:
        response = await client.get(
            "/api/v1/identify", params={"address": address}, headers=operator
        )
        assert response.status == 200
        return dict(await response.json())

    match = await ask("8 916 123 45 67")
    assert (match["verdict"], [c["id"] for c in match["contacts"]]) == ("match", [solo["id"]])
    ambiguous = await ask("84951234567")
    assert ambiguous["verdict"] == "ambiguous"
    assert [c["id"] for c in ambiguous["contacts"]] == [one["id"], other["id"]]
    assert (await ask("+79990000000"))["verdict"] == "unknown"
    assert (await ask("201"))["verdict"] == "not_a_customer"
    assert (await ask("nobody@example.com"))["verdict"] == "unknown"
