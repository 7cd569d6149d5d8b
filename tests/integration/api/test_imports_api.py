"""Import over HTTP: upload with a mapping, follow progress, download the rejected rows."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]

SHEET = (
    "Full name;Company;Mobile;E-mail;Tags\r\n"
    "Ivan Petrov;Romashka;8 916 123-45-67;ivan@example.com;vip, moscow\r\n"
    "Anna Smirnova;Vector;+7 903 555-01-01;;\r\n"
    "Broken Phone;;12-AB;;\r\n"
    "Nobody;;;;\r\n"
    "Ivan again;;+79161234567;;\r\n"
)
MAPPING = {
    "name": "Full name",
    "company": "Company",
    "phones": ["Mobile"],
    "emails": ["E-mail"],
    "tags": {"column": "Tags", "separator": ","},
}


def _form(mapping: object, *, dry_run: bool = False) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("mapping", json.dumps(mapping))
    form.add_field("dry_run", "true" if dry_run else "false")
    form.add_field(
        "file", SHEET.encode("utf-8-sig"), filename="prospects.csv", content_type="text/csv"
    )
    return form


async def _finished(client: Client, url: str, auth: dict[str, str]) -> dict[str, Any]:
    for _ in range(200):
        state = dict(await (await client.get(url, headers=auth)).json())
        if state["status"] in ("done", "failed"):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"import did not finish: {state}")


async def test_uploaded_sheet_is_imported_with_a_report_of_rejected_rows(
    client: Client, manager: dict[str, str]
) -> None:
    started = await client.post("/api/v1/imports", data=_form(MAPPING), headers=manager)
    assert started.status == 202, await started.text()
    report = await _finished(client, started.headers["Location"], manager)
    assert report["status"] == "done", report
    assert (report["created"], report["merged"], report["rejected"]) == (2, 0, 3)
    assert report["progress"] == 1.0
    errors = await client.get(report["errors_url"], headers=manager)
    assert errors.status == 200
    rows = list(csv.reader(io.StringIO((await errors.read()).decode("utf-8-sig"))))
    reasons = " | ".join(" ".join(row) for row in rows[1:])
    assert "12-AB" in reasons
    assert "no contact point" in reasons
    assert "duplicate" in reasons
    found = await client.get("/api/v1/contacts", params={"phone": "+79161234567"}, headers=manager)
    [ivan] = (await found.json())["items"]
    assert (ivan["name"], ivan["company"], ivan["tags"]) == (
        "Ivan Petrov",
        "Romashka",
        ["moscow", "vip"],
    )


async def test_dry_run_reports_the_same_and_writes_nothing(
    client: Client, manager: dict[str, str]
) -> None:
    started = await client.post(
        "/api/v1/imports", data=_form(MAPPING, dry_run=True), headers=manager
    )
    report = await _finished(client, started.headers["Location"], manager)
    assert (report["created"], report["merged"], report["rejected"]) == (2, 0, 3)
    found = await client.get("/api/v1/contacts", headers=manager)
    assert (await found.json())["items"] == []


async def test_bad_mapping_is_refused_at_upload_naming_the_column(
    client: Client, manager: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/imports", data=_form({**MAPPING, "phones": ["Phone"]}), headers=manager
    )
    assert response.status == 422
    problem = await response.json()
    assert problem["errors"][0]["field"] == "mapping"
    assert "Phone" in problem["errors"][0]["message"]


async def test_operator_may_not_import(client: Client, operator: dict[str, str]) -> None:
    response = await client.post("/api/v1/imports", data=_form(MAPPING), headers=operator)
    assert response.status == 403
