"""Fuzz: spreadsheet rows of any text, as CSV and as XLSX, through the real upload endpoint.

Whatever the cells hold (control characters, NUL, formulas, quotes, long
values, characters XML forbids), the hub answers 202 or a 4xx problem, never a
500 or a traceback; an accepted import ends done or failed with a message,
and the contacts it added are exactly the ones it counted as created.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.integration.api.test_imports_exact import (
    MAPPING,
    NS,
    contacts,
    sheet_of,
    until,
    xlsx,
)

from commhub.store.engine import SessionFactory

Client = TestClient[Any, Any]
HEADER = ["Name", "Phone", "E-mail"]
ACCEPTED = (202, 413, 415, 422)

cell = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\+7 ?9\d{2} ?\d{3}-?\d{2}-?\d{2}", fullmatch=True),
    st.emails(),
    st.sampled_from(["=1+1", "@SUM(A1)", "-", "+", '="79161234567"', "\x00", "\r\n", '"']),
    st.text(min_size=200, max_size=2000),
)
rows = st.lists(st.lists(cell, min_size=0, max_size=5), min_size=0, max_size=20)
extra_header = st.lists(st.text(max_size=10), max_size=2)
FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def as_csv(header: list[str], body: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(body)
    return out.getvalue().encode("utf-8", errors="surrogatepass")


def as_xlsx(header: list[str], body: list[list[str]]) -> bytes:
    def xml_row(number: int, cells: list[str]) -> str:
        inner = "".join(
            f'<c r="{chr(65 + i)}{number}" t="inlineStr"><is><t>{escape(v)}</t></is></c>'
            for i, v in enumerate(cells[:26])
        )
        return f'<row r="{number}">{inner}</row>'

    data = "".join(xml_row(n, cells) for n, cells in enumerate([header, *body], start=1))
    return xlsx(sheet_of(data, "A1:Z99"))


async def check_upload(
    client: Client, auth: dict[str, str], sessions: SessionFactory, content: bytes, name: str
) -> None:
    before = await contacts(sessions)
    form = aiohttp.FormData()
    form.add_field("mapping", json.dumps(MAPPING))
    form.add_field("file", io.BytesIO(content), filename=name)
    answer = await client.post("/api/v1/imports", data=form, headers=auth)
    text = await answer.text()
    assert answer.status in ACCEPTED, text
    assert "Traceback" not in text
    if answer.status != 202:
        assert answer.content_type == "application/problem+json"
        assert await contacts(sessions) == before
        return
    report = await until(client, answer.headers["Location"], auth, "done", "failed")
    assert "Traceback" not in str(report["error"])
    assert report["created"] + report["merged"] + report["rejected"] <= report["rows_done"]
    assert await contacts(sessions) == before + report["created"], report
    if report["errors_url"]:
        errors = await client.get(report["errors_url"], headers=auth)
        assert errors.status == 200


@FUZZ
@given(body=rows, extra=extra_header)
async def test_fuzzed_csv_rows_never_answer_500(
    client: Client,
    manager: dict[str, str],
    sessions: SessionFactory,
    body: list[list[str]],
    extra: list[str],
) -> None:
    await check_upload(client, manager, sessions, as_csv(HEADER + extra, body), "fuzz.csv")


@FUZZ
@given(body=rows, extra=extra_header)
async def test_fuzzed_xlsx_rows_never_answer_500(
    client: Client,
    manager: dict[str, str],
    sessions: SessionFactory,
    body: list[list[str]],
    extra: list[str],
) -> None:
    await check_upload(client, manager, sessions, as_xlsx(HEADER + extra, body), "fuzz.xlsx")


@FUZZ
@given(
    content=st.one_of(st.binary(max_size=400), st.binary(max_size=400).map(lambda b: _zipped(b))),
    name=st.sampled_from(["f.csv", "f.xlsx"]),
)
async def test_fuzzed_bytes_named_csv_or_xlsx_never_answer_500(
    client: Client, manager: dict[str, str], sessions: SessionFactory, content: bytes, name: str
) -> None:
    await check_upload(client, manager, sessions, content, name)


def _zipped(part: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as book:
        book.writestr("xl/worksheets/sheet1.xml", f"<worksheet {NS}><sheetData>".encode() + part)
    return out.getvalue()
