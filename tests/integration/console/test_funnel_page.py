"""The funnel report in the console: figures from the stage history, links to the deals
behind each figure, CSV and XLSX, managers only."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import TestClient
from openpyxl import load_workbook

from app_fixtures import log_in
from commhub.services import deals, pipelines
from commhub.services.deals import SYSTEM, DealDraft
from commhub.web.keys import DATABASE

Client = TestClient[Any, Any]


async def _history(client: Client) -> dict[str, int]:
    """Three deals this month: one skips to a proposal and is won, one is lost from
    "In progress", one stays new. Returns the stage ids by preset."""
    db = client.app[DATABASE]
    view = (await pipelines.pipelines(db))[0]
    stage = {s.preset or s.name: s.id for s in view.stages}
    won = await deals.create_deal(
        db, DealDraft(title="Won", currency="RUB", amount="100.50"), SYSTEM
    )
    await deals.move_deal(db, won.id, stage["proposal"], SYSTEM)
    await deals.move_deal(db, won.id, stage["won"], SYSTEM)
    lost = await deals.create_deal(db, DealDraft(title="Lost", currency="EUR", amount="7"), SYSTEM)
    await deals.move_deal(db, lost.id, stage["in_progress"], SYSTEM)
    await deals.move_deal(db, lost.id, stage["lost"], SYSTEM, lost_reason="Too expensive")
    await deals.create_deal(db, DealDraft(title="New", currency="RUB", amount="1"), SYSTEM)
    return stage


def _row(html: str, stage_id: int) -> str:
    found = re.search(rf'<tr data-stage="{stage_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert found is not None, html
    return found.group(1)


def _figure(row: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}"[^>]*>([^<]*)<', row)
    assert found is not None, row
    return found.group(1).strip()


async def test_manager_sees_each_stage_reached_by_the_history(client: Client) -> None:
    stage = await _history(client)
    await log_in(client, "manager")
    response = await client.get("/reports/funnel")
    assert response.status == 200
    html = await response.text()
    new, progress, proposal, won = (
        _row(html, stage[k]) for k in ("new_lead", "in_progress", "proposal", "won")
    )
    assert _figure(new, "reached") == "3"
    assert _figure(new, "moved_on") == "2"
    assert _figure(new, "to_next") == "66.7%"
    # The won deal skipped "In progress": it counts as having passed it.
    assert _figure(progress, "reached") == "2"
    assert _figure(progress, "moved_on") == "1"
    assert _figure(proposal, "reached") == "1"
    assert _figure(won, "reached") == "1"
    assert _figure(new, "to_won") == "33.3%"
    assert "Too expensive" in html
    assert 'id="funnel-chart"' in html


async def test_every_number_links_to_the_deals_behind_it(client: Client) -> None:
    stage = await _history(client)
    await log_in(client, "manager")
    start = (date.today() - timedelta(days=40)).isoformat()
    asked = await client.get(f"/reports/funnel?period=custom&from={start}&source=manual")
    html = await asked.text()
    link = re.search(r'<a data-figure="moved_on" href="([^"]+)"', _row(html, stage["new_lead"]))
    assert link is not None
    url = urlsplit(link.group(1).replace("&amp;", "&"))
    assert url.path == "/deals"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["reached"] == str(stage["new_lead"])
    assert query["outcome"] == "moved_on"
    assert query["from"] == start
    assert query["source"] == "manual"
    assert query["pipeline"]
    listed = await client.get(link.group(1).replace("&amp;", "&"))
    assert listed.status == 200
    text = await listed.text()
    assert "Won" in text and "Lost" in text


async def test_the_table_downloads_as_csv_and_xlsx(client: Client) -> None:
    await _history(client)
    await log_in(client, "manager")
    response = await client.get("/reports/funnel.csv")
    assert response.status == 200
    rows = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig"))))
    header = rows[0]
    assert header[:3] == ["Stage", "Kind", "Reached"]
    assert "Amount, EUR" in header and "Amount, RUB" in header
    first = rows[1]
    assert first[2] == "3"
    assert first[header.index("Amount, RUB")] == "101.50"
    assert ["Too expensive", "1"] in rows
    book = await client.get("/reports/funnel.xlsx")
    assert book.status == 200
    sheet = load_workbook(io.BytesIO(await book.read()), read_only=True).active
    assert sheet is not None
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[1][2] == 3


async def test_operators_are_denied_and_bad_filters_are_a_page(client: Client) -> None:
    await log_in(client, "operator")
    assert (await client.get("/reports/funnel")).status == 403
    await log_in(client, "manager")
    bad = await client.get("/reports/funnel?period=custom&from=2026-13-40")
    assert bad.status == 400
    assert "is not a date" in await bad.text()
    unknown = await client.get("/reports/funnel?source=%00evil")
    assert unknown.status in (400,)
    missing = await client.get("/reports/funnel?pipeline=999999")
    assert missing.status == 404
