"""The funnel report over the API, from a made-up history with a skipped stage, a move
back and a loss, and its drill-down to the deals behind a number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from deal_calls import me, open_deal, stages

Client = TestClient[Any, Any]
Auth = dict[str, str]


async def move(
    client: Client, auth: Auth, deal: dict[str, Any], stage_id: int, **more: Any
) -> None:
    response = await client.post(
        f"/api/v1/deals/{deal['id']}/move", json={"stage_id": stage_id, **more}, headers=auth
    )
    assert response.status == 200, await response.text()


async def test_funnel_counts_a_skip_as_passed_and_a_move_back_once(
    client: Client, manager: Auth
) -> None:
    s = await stages(client, manager)
    skipper = await open_deal(client, manager, title="A", amount="100", currency="RUB")
    await move(client, manager, skipper, s["proposal"])
    await move(client, manager, skipper, s["won"])
    wanderer = await open_deal(client, manager, title="B", amount="200", currency="RUB")
    for stage in ("in_progress", "new_lead", "in_progress"):
        await move(client, manager, wanderer, s[stage])
    loser = await open_deal(client, manager, title="C", amount="50", currency="USD")
    await move(client, manager, loser, s["lost"], lost_reason="Price")

    today = datetime.now(UTC).date()
    period = {"since": str(today - timedelta(days=1)), "until": str(today + timedelta(days=1))}
    response = await client.get("/api/v1/reports/funnel", params=period, headers=manager)
    assert response.status == 200, await response.text()
    report = await response.json()
    rows = {row["preset"]: row for row in report["stages"]}
    assert rows["new_lead"]["name"] == "New lead"
    counts = {p: (r["reached"], r["moved_on"], r["won"]) for p, r in rows.items()}
    assert counts == {
        "new_lead": (3, 2, 1),
        "in_progress": (2, 1, 1),
        "proposal": (1, 1, 1),
        "won": (1, 0, 1),
        "lost": (1, 0, 0),
    }
    assert (rows["new_lead"]["to_next"], rows["new_lead"]["to_won"]) == ("66.7", "33.3")
    assert rows["new_lead"]["amounts"] == [
        {"amount": "300.00", "currency": "RUB"},
        {"amount": "50.00", "currency": "USD"},
    ]
    assert report["lost_reasons"] == [{"reason": "Price", "deals": 1}]

    drill = {
        "reached_stage_id": str(s["in_progress"]),
        "since": report["since"],
        "until": report["until"],
    }
    behind = await client.get("/api/v1/deals", params=drill, headers=manager)
    assert {d["title"] for d in (await behind.json())["items"]} == {"A", "B"}
    won = await client.get("/api/v1/deals", params={**drill, "outcome": "won"}, headers=manager)
    assert [d["title"] for d in (await won.json())["items"]] == ["A"]


async def test_funnel_period_must_not_end_before_it_starts(client: Client, manager: Auth) -> None:
    response = await client.get(
        "/api/v1/reports/funnel",
        params={"since": "2026-02-01", "until": "2026-01-01"},
        headers=manager,
    )
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "query.until"


async def test_funnel_days_are_the_callers_days_in_their_zone(
    client: Client, admin: Auth, manager: Auth
) -> None:
    manager_id = await me(client, manager)
    zoned = await client.patch(
        f"/api/v1/users/{manager_id}", json={"time_zone": "Asia/Tokyo"}, headers=admin
    )
    assert zoned.status == 200, await zoned.text()
    response = await client.get(
        "/api/v1/reports/funnel",
        params={"since": "2026-03-01", "until": "2026-03-31"},
        headers=manager,
    )
    report = await response.json()
    assert datetime.fromisoformat(report["since"]) == datetime(2026, 2, 28, 15, tzinfo=UTC)
    assert datetime.fromisoformat(report["until"]) == datetime(2026, 3, 31, 15, tzinfo=UTC)
