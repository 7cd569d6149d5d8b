"""The imports page: the queue's order, and cancel from the console, in the user's language."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from app_fixtures import log_in
from commhub.models import Import, utcnow
from commhub.store.engine import SessionFactory

Client = TestClient[Any, Any]
RUSSIAN = {"Accept-Language": "ru-RU,ru;q=0.9"}


async def _add(sessions: SessionFactory, status: str, **values: Any) -> int:
    async with sessions() as session:
        row = Import(
            filename=f"{status}.csv",
            stored_path="/nowhere.csv",
            mapping={},
            status=status,
            **values,
        )
        session.add(row)
        await session.commit()
        return row.id


async def test_queued_import_shows_its_place_and_is_cancelled_from_the_page(
    client: Client, sessions: SessionFactory
) -> None:
    running = await _add(
        sessions, "running", claimed_by="worker:x:1:y", lease_until=utcnow() + timedelta(hours=1)
    )
    waiting = await _add(sessions, "queued")
    csrf = await log_in(client, "manager")
    listing = await (await client.get("/imports")).text()
    assert re.search(rf'data-import="{waiting}" data-status="queued"', listing)
    assert "place 1 in the queue" in listing
    russian = await (await client.get("/imports", headers=RUSSIAN)).text()
    assert "1-й в очереди" in russian and "Отменить" in russian

    done = await client.post(
        f"/imports/{running}/cancel", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert (done.status, done.headers["Location"]) == (303, "/imports")
    after = await (await client.get("/imports")).text()
    assert f'data-import="{running}" data-status="cancelled"' in after
    assert "cancelled by manager" in after
    again = await client.post(
        f"/imports/{running}/cancel", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert again.status == 303
    shown = await (await client.get("/imports", headers=RUSSIAN)).text()
    assert "отменён" in shown


async def test_operators_do_not_see_imports(client: Client) -> None:
    await log_in(client, "operator")
    denied = await client.get("/imports", headers={"Accept": "text/html"})
    assert denied.status == 403
