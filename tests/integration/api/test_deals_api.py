"""Deals over the API: who sees and changes which deal, money as strings, retries open
one deal, bad input named by field, and a stage change told live to the owner."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from commhub.config import Settings
from deal_calls import failed_field, me, open_deal, stages

Client = TestClient[Any, Any]
Auth = dict[str, str]


async def test_an_opened_deal_keeps_its_amount_exact_and_a_retry_opens_it_once(
    client: Client, operator: Auth
) -> None:
    headers = {**operator, "Idempotency-Key": "order-42"}
    body = {"title": "Website", "amount": "1500.50", "currency": "rub"}
    first = await client.post("/api/v1/deals", json=body, headers=headers)
    assert first.status == 201, await first.text()
    deal = await first.json()
    assert first.headers["Location"] == f"/api/v1/deals/{deal['id']}"
    assert (deal["amount"], deal["currency"]) == ("1500.50", "RUB")
    assert deal["stage"]["preset"] == "new_lead"
    assert deal["owner_id"] == await me(client, operator)
    assert [h["to_stage_id"] for h in deal["history"]] == [deal["stage"]["id"]]
    again = await client.post("/api/v1/deals", json=body, headers=headers)
    assert (await again.json())["id"] == deal["id"]
    listed = await (await client.get("/api/v1/deals", headers=operator)).json()
    assert listed["total"] == 1
    assert [d["id"] for d in listed["items"]] == [deal["id"]]


async def test_operator_works_on_own_deals_and_own_contacts_deals_only(
    client: Client, operator: Auth, manager: Auth
) -> None:
    operator_id = await me(client, operator)
    theirs = await open_deal(client, manager, title="Manager's own")
    contact = await client.post(
        "/api/v1/contacts", json={"name": "Anna", "owner_id": operator_id}, headers=manager
    )
    contact_id = (await contact.json())["id"]
    of_my_contact = await open_deal(
        client, manager, title="For Anna", contact_id=contact_id, owner_id=await me(client, manager)
    )
    mine = await open_deal(client, operator, title="Mine")

    listed = await (await client.get("/api/v1/deals", headers=operator)).json()
    assert {d["id"] for d in listed["items"]} == {mine["id"], of_my_contact["id"]}
    refused = await client.get(f"/api/v1/deals/{theirs['id']}", headers=operator)
    assert refused.status == 403
    edit = await client.patch(
        f"/api/v1/deals/{theirs['id']}", json={"title": "Taken"}, headers=operator
    )
    assert edit.status == 403
    edited = await client.patch(
        f"/api/v1/deals/{of_my_contact['id']}", json={"amount": "10"}, headers=operator
    )
    assert (await edited.json())["amount"] == "10.00"

    give_away = await client.patch(
        f"/api/v1/deals/{mine['id']}",
        json={"owner_id": await me(client, manager)},
        headers=operator,
    )
    assert await failed_field(give_away, 403) == "owner_id"
    everything = await (await client.get("/api/v1/deals", headers=manager)).json()
    assert everything["total"] == 3


async def test_marketer_has_no_deals(client: Client, accounts: dict[Any, Any]) -> None:
    from commhub.domain.roles import Role

    marketer = accounts[Role.MARKETER].auth
    assert (await client.get("/api/v1/deals", headers=marketer)).status == 403
    assert (await client.get("/api/v1/pipelines", headers=marketer)).status == 403
    assert (
        await client.get(
            "/api/v1/reports/funnel",
            params={"since": "2026-01-01", "until": "2026-01-31"},
            headers=marketer,
        )
    ).status == 403


async def test_bad_deal_input_is_refused_naming_the_field(
    client: Client, manager: Auth, operator: Auth
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"title": "x", "amount": 10.5, "currency": "RUB"}, "amount"),
        ({"title": "x", "amount": "-1", "currency": "RUB"}, "amount"),
        ({"title": "x", "amount": "1", "currency": "ZZZ"}, "currency"),
        ({"title": "x", "amount": "1", "currency": "RUB", "stage_id": 99999}, "stage_id"),
        ({"title": "x", "amount": "1.005", "currency": "RUB"}, "amount"),
    ]
    for body, field in cases:
        response = await client.post("/api/v1/deals", json=body, headers=manager)
        assert await failed_field(response) == field, body
    deal = await open_deal(client, operator, title="Kept")
    unknown = await client.post(
        f"/api/v1/deals/{deal['id']}/move", json={"stage_id": 99999}, headers=operator
    )
    assert await failed_field(unknown) == "stage_id"
    assert (await client.get("/api/v1/deals/99999", headers=manager)).status == 404


async def test_moving_a_deal_records_history_and_tells_its_owner_live(
    client: Client, operator: Auth
) -> None:
    found = await stages(client, operator)
    deal = await open_deal(client, operator, title="Moving")
    async with client.ws_connect("/api/v1/live", headers=operator) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        moved = await client.post(
            f"/api/v1/deals/{deal['id']}/move",
            json={"stage_id": found["lost"], "lost_reason": "Too expensive"},
            headers=operator,
        )
        assert moved.status == 200, await moved.text()
        event = await ws.receive_json(timeout=5)
    assert event["type"] == "deal.moved"
    assert event["data"]["deal_id"] == deal["id"]
    assert event["data"]["kind"] == "lost"
    after = await moved.json()
    assert after["closed_at"] is not None
    assert after["lost_reason"] == "Too expensive"
    assert [h["to_stage_id"] for h in after["history"]] == [found["new_lead"], found["lost"]]
    lost = await client.get("/api/v1/deals", params={"state": "lost"}, headers=operator)
    assert [d["id"] for d in (await lost.json())["items"]] == [deal["id"]]


async def test_bulk_change_moves_and_reassigns_all_or_none(
    client: Client, manager: Auth, operator: Auth
) -> None:
    found = await stages(client, manager)
    operator_id = await me(client, operator)
    a = await open_deal(client, manager, title="A")
    b = await open_deal(client, manager, title="B")
    done = await client.post(
        "/api/v1/deals/bulk",
        json={"ids": [a["id"], b["id"]], "owner_id": operator_id, "stage_id": found["proposal"]},
        headers=manager,
    )
    assert (await done.json()) == {"changed": 2}
    mine = await (await client.get("/api/v1/deals", headers=operator)).json()
    assert {(d["id"], d["stage"]["preset"]) for d in mine["items"]} == {
        (a["id"], "proposal"),
        (b["id"], "proposal"),
    }
    other = await open_deal(client, manager, title="C")
    refused = await client.post(
        "/api/v1/deals/bulk",
        json={"ids": [a["id"], other["id"]], "stage_id": found["won"]},
        headers=operator,
    )
    assert refused.status == 403
    still = await (await client.get(f"/api/v1/deals/{a['id']}", headers=operator)).json()
    assert still["stage"]["preset"] == "proposal"


async def test_a_note_cannot_pose_as_a_deal_line(client: Client, manager: Auth) -> None:
    response = await client.post(
        "/api/v1/interactions",
        json={
            "channel": "deal",
            "direction": "internal",
            "status": "logged",
            "external_id": "fake-1",
            "occurred_at": "2026-12-01T10:00:00+00:00",
        },
        headers=manager,
    )
    assert await failed_field(response) == "channel"


async def test_overdue_lists_deals_whose_next_step_was_due_before_today(
    client: Client, operator: Auth, settings: Settings
) -> None:
    today = datetime.now(ZoneInfo(settings.time_zone)).date()  # the caller chose no zone
    late = await open_deal(
        client, operator, title="Late", next_step="Call", next_step_due_on=str(today - timedelta(1))
    )
    await open_deal(client, operator, title="Soon", next_step_due_on=str(today + timedelta(1)))
    await open_deal(client, operator, title="Today", next_step_due_on=str(today))
    listed = await client.get("/api/v1/deals", params={"overdue": "true"}, headers=operator)
    assert [d["id"] for d in (await listed.json())["items"]] == [late["id"]]
