"""The manager's start page: the team's funnel, each person's done against owed, deals per
source; every figure a link to its list. Operators keep their own home."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from app_fixtures import Account, log_in
from commhub.domain.deals import DealSource
from commhub.domain.roles import Role
from commhub.models import User
from commhub.services import deals, pipelines
from commhub.services.deals import SYSTEM, DealChanges, DealDraft
from commhub.web.keys import DATABASE

Client = TestClient[Any, Any]


async def _user_id(client: Client, username: str) -> int:
    async with client.app[DATABASE]() as session:
        found = await session.scalar(select(User.id).where(User.username == username))
    assert found is not None
    return found


def _person(html: str, user_id: int) -> dict[str, tuple[str, str | None]]:
    row = re.search(rf'<tr data-person="{user_id}">(.*?)</tr>', html, re.S)
    assert row is not None, html
    figures: dict[str, tuple[str, str | None]] = {}
    for match in re.finditer(
        r'(?:<a data-figure="(\w+)" href="([^"]+)">|data-figure="(\w+)">)([^<]*)<', row.group(1)
    ):
        name = match.group(1) or match.group(3)
        link = match.group(2).replace("&amp;", "&") if match.group(2) else None
        figures[name] = (match.group(4).strip(), link)
    return figures


async def test_manager_sees_done_against_owed_with_links(
    client: Client, accounts: dict[Role, Account]
) -> None:
    db = client.app[DATABASE]
    operator = await _user_id(client, "operator")
    stages = {s.preset: s.id for s in (await pipelines.pipelines(db))[0].stages}
    won = await deals.create_deal(
        db,
        DealDraft(
            title="Sold-Alpha",
            currency="RUB",
            amount="1200.00",
            owner_id=operator,
            source=DealSource.CALL,
        ),
        SYSTEM,
    )
    await deals.move_deal(db, won.id, stages["won"], SYSTEM)
    late = await deals.create_deal(
        db, DealDraft(title="Stalled-Beta", currency="RUB", owner_id=operator), SYSTEM
    )
    await deals.update_deal(
        db,
        late.id,
        DealChanges(next_step="Call back", next_step_due_on=date.today() - timedelta(days=3)),
        SYSTEM,
    )
    manager_auth = accounts[Role.MANAGER].auth
    contact = await client.post(
        "/api/v1/contacts",
        json={"name": "Writer", "emails": ["writer@example.com"], "owner_id": operator},
        headers=manager_auth,
    )
    assert contact.status == 201, await contact.text()
    contact_id = (await contact.json())["id"]
    mail = await client.post(
        "/api/v1/interactions",
        json={
            "channel": "email",
            "direction": "in",
            "status": "received",
            "external_id": "<q1@example.com>",
            "occurred_at": datetime.now(UTC).isoformat(),
            "contact_id": contact_id,
            "from_address": "writer@example.com",
        },
        headers=manager_auth,
    )
    assert mail.status == 201, await mail.text()

    await log_in(client, "manager")
    html = await (await client.get("/")).text()
    assert 'id="team-start"' in html
    figures = _person(html, operator)
    assert figures["won"][0] == "1"
    assert "1,200.00" in html
    assert figures["overdue_steps"][0] == "1"
    assert figures["emails_waiting"][0] == "1"
    won_link = figures["won"][1]
    assert won_link is not None
    query = {k: v[0] for k, v in parse_qs(urlsplit(won_link).query).items()}
    assert query["owner"] == str(operator) and query["state"] == "won"
    listed = await (await client.get(won_link)).text()
    assert "Sold-Alpha" in listed and "Stalled-Beta" not in listed
    overdue_link = figures["overdue_steps"][1]
    assert overdue_link is not None
    overdue = await (await client.get(overdue_link)).text()
    assert "Stalled-Beta" in overdue and "Sold-Alpha" not in overdue
    waiting_link = figures["emails_waiting"][1]
    assert waiting_link is not None
    waiting = await (await client.get(waiting_link)).text()
    assert "Writer" in waiting
    source = re.search(
        r'<tr data-source="call">.*?data-figure="won" href="([^"]+)">(\d+)<', html, re.S
    )
    assert source is not None and source.group(2) == "1"
    funnel = re.search(r'id="team-funnel"', html)
    assert funnel is not None


async def test_an_operator_keeps_their_own_home(client: Client) -> None:
    await log_in(client, "operator")
    html = await (await client.get("/")).text()
    assert 'id="team-start"' not in html
