"""Rows stored before dates were bounded (year 1, year 9999) never fail a page.

Such a moment has no local time east or west of UTC; the log, the card and
both exports show it as stored, for readers in Pacific/Kiritimati (UTC+14)
and America/Adak (UTC-10/-9).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openpyxl import load_workbook
from sqlalchemy import update

from app_fixtures import log_in
from commhub.domain.interactions import Direction, Medium, NewInteraction, Status
from commhub.models import User
from commhub.store import interactions as store
from commhub.web.keys import DATABASE

Client = TestClient[Any, Any]
EXTREMES = (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))


async def _seed(client: Client, headers: dict[str, str]) -> int:
    made = await client.post(
        "/api/v1/contacts", json={"name": "Old Timer", "phones": ["+79161234567"]}, headers=headers
    )
    contact_id = int((await made.json())["id"])
    async with client.app[DATABASE]() as session:
        for n, moment in enumerate(EXTREMES):
            await store.record(
                session,
                NewInteraction(
                    channel=Medium.CALL,
                    direction=Direction.INBOUND,
                    status=Status.ANSWERED,
                    external_id=f"extreme-{n}",
                    occurred_at=moment,
                    answered_at=moment,
                    ended_at=moment,
                    contact_id=contact_id,
                    from_address="+79161234567",
                ),
            )
        await session.commit()
    return contact_id


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "America/Adak"])
async def test_log_card_and_exports_show_stored_extremes(
    client: Client, manager: dict[str, str], zone: str
) -> None:
    contact_id = await _seed(client, manager)
    async with client.app[DATABASE]() as session:
        await session.execute(update(User).where(User.username == "manager").values(time_zone=zone))
        await session.commit()
    await log_in(client, "manager")
    for path in ("/log", f"/contacts/{contact_id}", "/"):
        page = await client.get(path, headers={"Accept": "text/html"})
        text = await page.text()
        assert page.status == 200, (path, text)
        assert "Traceback" not in text
    api = await client.get(f"/api/v1/contacts/{contact_id}", headers=manager)
    assert api.status == 200
    csv_export = await client.get("/log/export.csv")
    assert csv_export.status == 200
    csv_text = await csv_export.text()
    assert csv_text.count("Old Timer") == 2
    xlsx = await client.get("/log/export.xlsx")
    assert xlsx.status == 200
    sheet = load_workbook(io.BytesIO(await xlsx.read()), read_only=True).active
    assert sheet is not None
    assert len(list(sheet.iter_rows(values_only=True))) == 3
