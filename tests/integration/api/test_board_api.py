"""The board over the API: columns count and sum every deal per currency, show the
first cards, and page the rest of a column by cursor; an operator's board is theirs."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from deal_calls import open_deal, stages

Client = TestClient[Any, Any]
Auth = dict[str, str]


async def test_board_columns_count_sum_and_page_their_cards(
    client: Client, manager: Auth, operator: Auth
) -> None:
    for n in range(5):
        await open_deal(client, manager, title=f"R{n}", amount="100.10", currency="RUB")
    await open_deal(client, manager, title="U", amount="7", currency="USD")
    await open_deal(client, operator, title="Op", amount="1", currency="RUB")

    response = await client.get("/api/v1/deals/board", params={"limit": "4"}, headers=manager)
    assert response.status == 200, await response.text()
    board = await response.json()
    first = board["columns"][0]
    assert first["stage"]["preset"] == "new_lead"
    assert first["count"] == 7
    assert first["sums"] == [
        {"amount": "501.50", "currency": "RUB"},
        {"amount": "7.00", "currency": "USD"},
    ]
    assert len(first["deals"]) == 4
    assert [c["count"] for c in board["columns"][1:]] == [0] * (len(board["columns"]) - 1)

    seen = [d["title"] for d in first["deals"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        more = await client.get(
            f"/api/v1/stages/{first['stage']['id']}/deals",
            params={"cursor": cursor, "limit": "2"},
            headers=manager,
        )
        assert more.status == 200, await more.text()
        page = await more.json()
        seen += [d["title"] for d in page["deals"]]
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted([f"R{n}" for n in range(5)] + ["U", "Op"])

    own = await (await client.get("/api/v1/deals/board", headers=operator)).json()
    assert own["columns"][0]["count"] == 1
    assert [d["title"] for d in own["columns"][0]["deals"]] == ["Op"]


async def test_a_forged_cursor_is_refused(client: Client, manager: Auth) -> None:
    s = await stages(client, manager)
    response = await client.get(
        f"/api/v1/stages/{s['new_lead']}/deals", params={"cursor": "nonsense"}, headers=manager
    )
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "cursor"
