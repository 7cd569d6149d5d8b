"""The admin's user form names who gets a deactivated user's deals."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from app_fixtures import log_in
from deal_calls import me, open_deal

Client = TestClient[Any, Any]


async def test_the_user_form_hands_a_deactivated_users_deals_over(
    client: Client, admin: dict[str, str], manager: dict[str, str], operator: dict[str, str]
) -> None:
    operator_id, manager_id = await me(client, operator), await me(client, manager)
    await open_deal(client, operator, title="Handed over")
    csrf = await log_in(client, "admin")
    form = await client.get(f"/admin/users/{operator_id}")
    assert 'name="deals_to"' in await form.text()
    saved = await client.post(
        f"/admin/users/{operator_id}",
        data={
            "csrf_token": csrf,
            "display_name": "Leaving",
            "role": "operator",
            "extension": "201",
            "deals_to": str(manager_id),
        },
    )
    assert saved.status == 200, await saved.text()
    listed = await client.get(
        "/api/v1/deals", params={"owner_id": str(manager_id)}, headers=manager
    )
    assert [d["title"] for d in (await listed.json())["items"]] == ["Handed over"]
