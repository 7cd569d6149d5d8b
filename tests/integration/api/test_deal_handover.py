"""A deactivated user's deals go to the user the admin names, else to the admin;
the funnel's rows follow them, so the report by owner moves too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from deal_calls import failed_field, me, open_deal

Client = TestClient[Any, Any]
Auth = dict[str, str]


async def owned_by(client: Client, auth: Auth, owner_id: int) -> set[str]:
    listed = await client.get("/api/v1/deals", params={"owner_id": str(owner_id)}, headers=auth)
    return {d["title"] for d in (await listed.json())["items"]}


async def funnel_reached(client: Client, auth: Auth, owner_id: int) -> int:
    today = datetime.now(UTC).date()
    period = {
        "since": str(today - timedelta(days=1)),
        "until": str(today + timedelta(days=1)),
        "owner_id": str(owner_id),
    }
    report = await (await client.get("/api/v1/reports/funnel", params=period, headers=auth)).json()
    return int(report["stages"][0]["reached"])


async def test_deactivating_a_user_gives_their_deals_to_the_named_user(
    client: Client, admin: Auth, manager: Auth, operator: Auth
) -> None:
    operator_id, manager_id = await me(client, operator), await me(client, manager)
    await open_deal(client, operator, title="Left behind")
    await open_deal(client, operator, title="Also left")
    assert await funnel_reached(client, manager, operator_id) == 2
    off = await client.patch(
        f"/api/v1/users/{operator_id}",
        json={"active": False, "deals_to": manager_id},
        headers=admin,
    )
    assert off.status == 200, await off.text()
    assert await owned_by(client, manager, manager_id) == {"Left behind", "Also left"}
    assert await owned_by(client, manager, operator_id) == set()
    assert await funnel_reached(client, manager, manager_id) == 2
    assert await funnel_reached(client, manager, operator_id) == 0


async def test_without_a_name_the_deals_go_to_the_admin(
    client: Client, admin: Auth, manager: Auth, operator: Auth
) -> None:
    operator_id, admin_id = await me(client, operator), await me(client, admin)
    await open_deal(client, operator, title="Orphan")
    off = await client.patch(f"/api/v1/users/{operator_id}", json={"active": False}, headers=admin)
    assert off.status == 200, await off.text()
    assert await owned_by(client, manager, admin_id) == {"Orphan"}


async def test_deals_go_only_to_another_active_user_and_only_on_deactivation(
    client: Client, admin: Auth, manager: Auth, operator: Auth
) -> None:
    operator_id, manager_id = await me(client, operator), await me(client, manager)
    await open_deal(client, operator, title="Stays")
    to_self = await client.patch(
        f"/api/v1/users/{operator_id}",
        json={"active": False, "deals_to": operator_id},
        headers=admin,
    )
    assert await failed_field(to_self) == "deals_to"
    not_leaving = await client.patch(
        f"/api/v1/users/{operator_id}", json={"deals_to": manager_id}, headers=admin
    )
    assert await failed_field(not_leaving) == "deals_to"
    assert await owned_by(client, manager, operator_id) == {"Stays"}
    users = await (await client.get("/api/v1/users", headers=admin)).json()
    assert next(u for u in users["items"] if u["id"] == operator_id)["active"] is True
