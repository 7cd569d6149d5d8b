"""Segments through the API on both databases: every kind of condition, nested groups, lists.

A small contact base where each person differs in one thing the rules look
at; each test asks the live count (``/segments/preview``) for rules a
marketer would write, and checks exactly who is in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from commhub.domain.roles import Role
from commhub.models import (
    Company,
    Consent,
    Contact,
    ContactPoint,
    ContactTag,
    Deal,
    Interaction,
    Pipeline,
    Stage,
    Tag,
)
from commhub.store.engine import SessionFactory

Client = TestClient[Any, Any]
NOW = datetime.now(UTC)


@pytest.fixture
async def base(sessions: SessionFactory) -> dict[str, int]:
    """Ann (VIP, Moscow, e-mail consent, called last week, open deal 5000),
    Boris (VIP, Kazan, SMS consent withdrawn, called a year ago),
    Vera (Moscow, no tags, two e-mails this month, won deal),
    Gleb (merged into Ann: never a member)."""
    async with sessions() as session:
        acme = Company(name="Acme", name_key="acme")
        session.add(acme)
        await session.flush()
        people = {
            "ann": Contact(
                name="Ann Lee", name_key="ann lee", company_id=acme.id, extra={"city": "Moscow"}
            ),
            "boris": Contact(
                name="Борис Иванов",
                name_key="борис иванов",
                extra={"city": "Kazan", "tariff": "gold"},
            ),
            "vera": Contact(name="Vera", name_key="vera", extra={"city": "Moscow"}),
        }
        session.add_all(people.values())
        await session.flush()
        gleb = Contact(
            name="Gleb", name_key="gleb", merged_into_id=people["ann"].id, extra={"city": "Moscow"}
        )
        session.add(gleb)
        vip = Tag(name="vip")
        session.add(vip)
        await session.flush()
        ids = {k: v.id for k, v in people.items()}
        session.add_all(
            [
                ContactTag(contact_id=ids["ann"], tag_id=vip.id),
                ContactTag(contact_id=ids["boris"], tag_id=vip.id),
                ContactTag(contact_id=gleb.id, tag_id=vip.id),
                Consent(
                    contact_id=ids["ann"],
                    channel="email",
                    purpose="marketing",
                    granted=True,
                    source="t",
                ),
                Consent(
                    contact_id=ids["boris"],
                    channel="sms",
                    purpose="marketing",
                    granted=False,
                    source="t",
                ),
                ContactPoint(
                    contact_id=ids["ann"],
                    kind="email",
                    value="ann@x.example",
                    match_key="ann@x.example",
                ),
            ]
        )

        def call(
            contact: str, days: int, n: int, channel: str = "call", direction: str = "in"
        ) -> Interaction:
            return Interaction(
                channel=channel,
                direction=direction,
                status="answered",
                external_id=f"{contact}-{channel}-{n}",
                contact_id=ids[contact],
                occurred_at=NOW - timedelta(days=days),
            )

        session.add_all(
            [
                call("ann", 7, 1),
                call("boris", 365, 2),
                call("vera", 3, 3, "email", "in"),
                call("vera", 10, 4, "email", "out"),
            ]
        )
        pipeline = Pipeline(name="Sales", is_default=True)
        session.add(pipeline)
        await session.flush()
        open_stage = Stage(pipeline_id=pipeline.id, name="Talks", kind="open", position=0)
        won = Stage(pipeline_id=pipeline.id, name="Won", kind="won", position=1)
        session.add_all([open_stage, won])
        await session.flush()
        deal = {"pipeline_id": pipeline.id, "currency": "RUB", "source": "manual"}
        session.add_all(
            [
                Deal(**deal, stage_id=open_stage.id, contact_id=ids["ann"], title="A",
                     amount=Decimal("5000")),
                Deal(**deal, stage_id=won.id, contact_id=ids["vera"], title="V",
                     amount=Decimal("100"), closed_at=NOW - timedelta(days=2)),
            ]
        )  # fmt: skip
        await session.commit()
        return {**ids, "gleb": gleb.id, "stage:open": open_stage.id}


async def who(client: Client, rules: dict[str, Any], base: dict[str, int]) -> list[str]:
    response = await client.post("/api/v1/segments/preview", json={"rules": rules}, headers=AUTH)
    assert response.status == 200, await response.text()
    body = await response.json()
    names = {v: k for k, v in base.items() if not k.startswith("stage:")}
    found = sorted(names[m["id"]] for m in body["sample"])
    assert body["count"] == len(found)
    return found


AUTH: dict[str, str] = {}


@pytest.fixture(autouse=True)
def marketer(accounts: dict[Role, Any]) -> None:
    AUTH.clear()
    AUTH.update(accounts[Role.MARKETER].auth)


def day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).date().isoformat()


async def test_contact_fields_tags_and_consent(client: Client, base: dict[str, int]) -> None:
    assert await who(client, {"field": "tag", "op": "has", "value": "vip"}, base) == [
        "ann",
        "boris",
    ]
    assert await who(client, {"field": "city", "op": "equals", "value": "moscow"}, base) == [
        "ann",
        "vera",
    ]
    assert await who(client, {"field": "name", "op": "contains", "value": "ИВАН"}, base) == [
        "boris"
    ]
    assert await who(client, {"field": "name", "op": "starts_with", "value": "ve"}, base) == [
        "vera"
    ]
    assert await who(client, {"field": "company", "op": "equals", "value": "acme"}, base) == ["ann"]
    assert await who(
        client, {"field": "extra", "key": "tariff", "op": "equals", "value": "gold"}, base
    ) == ["boris"]
    consent = {"channel": "email", "purpose": "marketing"}
    assert await who(client, {"field": "consent", "op": "granted", "value": consent}, base) == [
        "ann"
    ]
    sms = {"channel": "sms", "purpose": "marketing"}
    assert await who(client, {"field": "consent", "op": "withdrawn", "value": sms}, base) == [
        "boris"
    ]
    assert await who(client, {"field": "consent", "op": "none", "value": sms}, base) == [
        "ann",
        "vera",
    ]


async def test_or_nested_inside_and_inside_not(client: Client, base: dict[str, int]) -> None:
    rules = {
        "all": [
            {"field": "tag", "op": "has", "value": "vip"},
            {
                "any": [
                    {"field": "city", "op": "equals", "value": "Kazan"},
                    {"field": "deal", "op": "open", "value": {"amount_at_least": "1000"}},
                ]
            },
        ]
    }
    assert await who(client, rules, base) == ["ann", "boris"]
    assert await who(client, {"not": rules}, base) == ["vera"]
    narrower = {"all": [rules, {"not": {"field": "city", "op": "equals", "value": "Kazan"}}]}
    assert await who(client, narrower, base) == ["ann"]


async def test_interactions_deals_and_missed_calls(client: Client, base: dict[str, int]) -> None:
    quiet = {
        "field": "interaction",
        "op": "none_after",
        "value": {"channel": "call", "date": day(90)},
    }
    assert await who(client, quiet, base) == ["boris", "vera"]
    emails = {
        "field": "interaction",
        "op": "count_at_least",
        "value": {"channel": "email", "since": day(30), "count": 2},
    }
    assert await who(client, {"all": [quiet, emails]}, base) == ["vera"]
    last = {"field": "interaction", "op": "last_before", "value": {"date": day(30)}}
    assert await who(client, last, base) == ["boris"]
    won = {"field": "deal", "op": "won_after", "value": {"date": day(30)}}
    assert await who(client, won, base) == ["vera"]
    staged = {"field": "deal", "op": "any", "value": {"stage_id": base["stage:open"]}}
    assert await who(client, staged, base) == ["ann"]
    missed = {"field": "missed_call", "op": "any_after", "value": day(30)}
    assert await who(client, missed, base) == []


async def test_a_bad_rule_is_refused_with_its_path(client: Client, base: dict[str, int]) -> None:
    bad = {"all": [{"field": "tag", "op": "has", "value": "vip"}, {"any": [{"field": "colour"}]}]}
    response = await client.post("/api/v1/segments/preview", json={"rules": bad}, headers=AUTH)
    assert response.status == 422
    problem = await response.json()
    assert "rules.all[1].any[0].field" in str(problem)
    deep: dict[str, Any] = {"field": "tag", "op": "has", "value": "vip"}
    for _ in range(12):
        deep = {"not": deep}
    response = await client.post("/api/v1/segments/preview", json={"rules": deep}, headers=AUTH)
    assert response.status == 422
    huge = {"field": "deal", "op": "open", "value": {"amount_at_least": "9" * 30}}
    response = await client.post("/api/v1/segments/preview", json={"rules": huge}, headers=AUTH)
    assert response.status == 422
    date = {"field": "created", "op": "after", "value": "yesterday"}
    response = await client.post("/api/v1/segments/preview", json={"rules": date}, headers=AUTH)
    assert response.status == 422


async def test_a_saved_segment_and_a_static_list(client: Client, base: dict[str, int]) -> None:
    saved = await client.post(
        "/api/v1/segments",
        json={"name": "VIPs", "rules": {"field": "tag", "op": "has", "value": "vip"}},
        headers=AUTH,
    )
    assert saved.status == 201, await saved.text()
    assert (await saved.json())["count"] == 2

    made = await client.post(
        "/api/v1/segments", json={"name": "Hand-picked", "kind": "static"}, headers=AUTH
    )
    list_id = (await made.json())["id"]
    added = await client.post(
        f"/api/v1/segments/{list_id}/members",
        json={"contact_ids": [base["vera"], base["ann"], base["vera"]]},
        headers=AUTH,
    )
    assert (await added.json())["count"] == 2
    again = await client.post(
        f"/api/v1/segments/{list_id}/members", json={"contact_ids": [base["ann"]]}, headers=AUTH
    )
    assert (await again.json())["count"] == 2
    unknown = await client.post(
        f"/api/v1/segments/{list_id}/members", json={"contact_ids": [999999]}, headers=AUTH
    )
    assert unknown.status == 422
    member = {"field": "list", "op": "member", "value": list_id}
    assert await who(
        client, {"all": [member, {"field": "tag", "op": "has", "value": "vip"}]}, base
    ) == ["ann"]
    removed = await client.request(
        "DELETE",
        f"/api/v1/segments/{list_id}/members",
        json={"contact_ids": [base["ann"]]},
        headers=AUTH,
    )
    assert (await removed.json())["count"] == 1
    listed = await client.get("/api/v1/segments", headers=AUTH)
    assert [s["name"] for s in (await listed.json())["items"]] == ["Hand-picked", "VIPs"]
