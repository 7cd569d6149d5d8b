"""The live view: calls in progress, who is on them, served complete before the feed updates it."""

from __future__ import annotations

import json
import re
from itertools import count
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from app_fixtures import log_in
from commhub.models import User
from commhub.web.keys import DATABASE

Client = TestClient[Any, Any]
HTML = {"Accept": "text/html"}
_ids = count(1)


async def _user_id(client: Client, username: str) -> int:
    async with client.app[DATABASE]() as session:
        found = await session.scalar(select(User.id).where(User.username == username))
    assert found is not None
    return found


async def _call(client: Client, headers: dict[str, str], **fields: Any) -> int:
    body = {
        "channel": "call",
        "direction": "in",
        "status": "ringing",
        "external_id": f"live-test-{next(_ids)}",
        "occurred_at": "2026-03-10T09:00:00Z",
        "from_address": "+79035550101",
        "to_address": "74951234567",
        **fields,
    }
    made = await client.post("/api/v1/interactions", json=body, headers=headers)
    assert made.status == 201, await made.text()
    return int((await made.json())["id"])


def _row(page: str, interaction_id: int) -> str | None:
    found = re.search(rf'<tr data-interaction="{interaction_id}"[^>]*>(.*?)</tr>', page, re.S)
    return found.group(1) if found else None


async def test_a_call_in_progress_shows_who_talks_to_whom(
    client: Client, operator: dict[str, str]
) -> None:
    contact = await client.post(
        "/api/v1/contacts",
        json={"name": "Ivan <Petrov>", "phones": ["+79035550101"]},
        headers=operator,
    )
    contact_id = (await contact.json())["id"]
    operator_id = await _user_id(client, "operator")
    talking = await _call(
        client,
        operator,
        status="answered",
        contact_id=contact_id,
        operator_id=operator_id,
        answered_at="2026-03-10T09:00:05Z",
        queue="sales",
        extra={"operators": ["201", "202", "299"]},
    )
    await log_in(client, "manager")

    response = await client.get("/live", headers=HTML)

    assert response.status == 200
    page = await response.text()
    row = _row(page, talking)
    assert row is not None
    assert f'href="/contacts/{contact_id}"' in row and "Ivan &lt;Petrov&gt;" in row
    assert "8 (903) 555-01-01" in row  # the customer's number, as written in the hub's country
    operators = re.search(r'data-cell="operators">(.*?)</td>', row, re.S)
    assert operators is not None
    # The operator of record once, the manager's extension by name, an unknown one as itself.
    assert operators.group(1) == "operator, manager, ext. 299"
    assert "sales" in row and "answered" in row
    assert re.search(r'data-cell="elapsed"[^>]*>\d+:\d\d:\d\d<', row)


async def test_an_ended_call_is_not_live(client: Client, operator: dict[str, str]) -> None:
    ringing = await _call(client, operator)
    ended = await _call(
        client, operator, status="missed", ended_at="2026-03-10T09:00:30Z", duration_s=0
    )
    await log_in(client, "manager")

    page = await (await client.get("/live", headers=HTML)).text()

    assert _row(page, ringing) is not None
    assert _row(page, ended) is None
    assert re.search(r'id="live-empty" hidden', page)


async def test_with_no_calls_the_page_says_so(client: Client) -> None:
    await log_in(client, "manager")

    page = await (await client.get("/live", headers=HTML)).text()

    assert re.search(r'<p class="muted" id="live-empty">', page)
    assert 'id="live-calls"' in page


async def test_the_page_watches_every_call_and_gives_its_script_the_names(
    client: Client, operator: dict[str, str]
) -> None:
    await _call(client, operator)
    await log_in(client, "manager")

    page = await (await client.get("/live", headers=HTML)).text()

    body = re.search(r"<body([^>]*)>", page)
    assert body is not None
    assert 'data-watch-calls="1"' in body.group(1) and "data-csrf=" in body.group(1)
    data = re.search(r'<script type="application/json" id="live-data">(.*?)</script>', page, re.S)
    assert data is not None
    names = json.loads(data.group(1))
    assert names["extensions"]["201"] == str(await _user_id(client, "operator"))
    assert "/static/live.js" in page
    # Until the script has the feed, the page says the list is not live.
    assert re.search(r'id="live-state"[^>]*>Not live', page)


async def test_an_operator_may_not_watch_every_call(client: Client) -> None:
    await log_in(client, "operator")

    response = await client.get("/live", headers=HTML)

    assert response.status == 403
    assert response.content_type == "text/html"
