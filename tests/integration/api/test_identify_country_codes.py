"""Identify over the API: a number that names its country never finds a contact abroad.

A number written with a country code that is not valid there (``+7 123…``)
still shares its trailing digits, the match key, with contacts everywhere;
only those in the country it names may be its owner.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]


async def _create(client: Client, auth: dict[str, str], name: str, phone: str) -> int:
    response = await client.post(
        "/api/v1/contacts", json={"name": name, "phones": [phone]}, headers=auth
    )
    assert response.status == 201, await response.text()
    return int((await response.json())["id"])


async def _identify(client: Client, auth: dict[str, str], address: str) -> tuple[str, list[int]]:
    response = await client.get("/api/v1/identify", params={"address": address}, headers=auth)
    assert response.status == 200, await response.text()
    body = await response.json()
    return body["verdict"], [c["id"] for c in body["contacts"]]


async def test_invalid_number_with_explicit_country_code_matches_only_that_country(
    client: Client, operator: dict[str, str]
) -> None:
    # Both end in 234567890: the match key of every number below.
    moscow = await _create(client, operator, "Moscow", "+7 923 456-78-90")
    london = await _create(client, operator, "London", "+44 7234 567890")
    for written in ("+7 123 456 7890", "810 7 123 456 7890", "+7 (123) 456-78-90"):
        assert await _identify(client, operator, written) == ("match", [moscow]), written
    assert await _identify(client, operator, "+49 1 234567890") == ("unknown", [])
    assert await _identify(client, operator, "+999 1234 567890") == ("not_a_customer", [])
    # Without a country code the number may be anyone's: both, never a guess.
    assert await _identify(client, operator, "1234567890") == ("ambiguous", [moscow, london])
