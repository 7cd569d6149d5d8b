"""Pipelines over the API: an admin renames, reorders and removes stages; removing one
moves its deals with their history, and a pipeline keeps an open stage."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from deal_calls import open_deal, stages

Client = TestClient[Any, Any]
Auth = dict[str, str]


async def default_pipeline(client: Client, auth: Auth) -> dict[str, Any]:
    listed = await (await client.get("/api/v1/pipelines", headers=auth)).json()
    return dict(next(p for p in listed["items"] if p["is_default"]))


async def test_admin_renames_and_reorders_stages(client: Client, admin: Auth) -> None:
    pipeline = await default_pipeline(client, admin)
    first = pipeline["stages"][0]
    renamed = await client.patch(
        f"/api/v1/stages/{first['id']}", json={"name": "Inbound"}, headers=admin
    )
    assert renamed.status == 200, await renamed.text()
    shown = (await renamed.json())["stages"][0]
    assert (shown["name"], shown["preset"]) == ("Inbound", None)

    ids = [s["id"] for s in pipeline["stages"]]
    order = [ids[1], ids[0], *ids[2:]]
    reordered = await client.put(
        f"/api/v1/pipelines/{pipeline['id']}/order", json={"stage_ids": order}, headers=admin
    )
    assert [s["id"] for s in (await reordered.json())["stages"]] == order
    partial = await client.put(
        f"/api/v1/pipelines/{pipeline['id']}/order", json={"stage_ids": ids[:2]}, headers=admin
    )
    assert partial.status == 422
    assert (await partial.json())["errors"][0]["field"] == "stage_ids"

    named = await client.patch(
        f"/api/v1/pipelines/{pipeline['id']}", json={"name": "B2B"}, headers=admin
    )
    assert (await named.json())["name"] == "B2B"


async def test_removing_a_stage_moves_its_deals_and_records_the_move(
    client: Client, admin: Auth, manager: Auth
) -> None:
    s = await stages(client, admin)
    deals = [await open_deal(client, manager, title=f"D{i}") for i in range(3)]
    needs_target = await client.delete(f"/api/v1/stages/{s['new_lead']}", headers=admin)
    assert needs_target.status == 422
    assert (await needs_target.json())["errors"][0]["field"] == "move_to"

    removed = await client.delete(
        f"/api/v1/stages/{s['new_lead']}",
        params={"move_to": str(s["in_progress"])},
        headers=admin,
    )
    assert (await removed.json()) == {"moved": 3}
    for deal in deals:
        now = await (await client.get(f"/api/v1/deals/{deal['id']}", headers=manager)).json()
        assert now["stage"]["preset"] == "in_progress"
        assert [h["to_stage_id"] for h in now["history"]] == [s["new_lead"], s["in_progress"]]
    pipeline = await default_pipeline(client, admin)
    assert s["new_lead"] not in [st["id"] for st in pipeline["stages"]]
    assert next(st for st in pipeline["stages"] if st["id"] == s["in_progress"])["deals"] == 3


async def test_the_last_open_stage_cannot_be_removed(client: Client, admin: Auth) -> None:
    created = await client.post(
        "/api/v1/pipelines",
        json={"name": "Tiny", "stages": [{"name": "Talk"}, {"name": "Done", "kind": "won"}]},
        headers=admin,
    )
    assert created.status == 201, await created.text()
    talk = (await created.json())["stages"][0]["id"]
    refused = await client.delete(f"/api/v1/stages/{talk}", headers=admin)
    assert refused.status == 409, await refused.text()
    assert "open stage" in (await refused.json())["detail"]
    no_open = await client.post(
        "/api/v1/pipelines",
        json={"name": "Broken", "stages": [{"name": "Done", "kind": "won"}]},
        headers=admin,
    )
    assert no_open.status == 422
    assert (await no_open.json())["errors"][0]["field"] == "stages"
