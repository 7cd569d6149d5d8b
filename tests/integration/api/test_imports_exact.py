"""Imports stay exact: one at a time in a visible queue, cancel, resume, retention, and
hostile spreadsheets answered with a message naming the row and column, never a 500."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update
from tests.app_fixtures import ClientMaker

from commhub.bootstrap import Hub, open_hub
from commhub.config import Settings
from commhub.models import Contact, Import, utcnow
from commhub.store.engine import SessionFactory
from commhub.web.app import create_app

Client = TestClient[Any, Any]
MAPPING = {"name": "Name", "phones": ["Phone"], "emails": ["E-mail"]}


def people_csv(count: int, *, header: str = "Name,Phone,E-mail") -> bytes:
    lines = [header] + [f"Person {i},+7916{i:07d},p{i}@example.com" for i in range(count)]
    return ("\r\n".join(lines) + "\r\n").encode()


def _form(content: bytes, filename: str = "people.csv", mapping: object = MAPPING) -> Any:
    form = aiohttp.FormData()
    form.add_field("mapping", json.dumps(mapping))
    form.add_field(
        "file", io.BytesIO(content), filename=filename, content_type="application/octet-stream"
    )
    return form


async def upload(
    client: Client, auth: dict[str, str], content: bytes, filename: str = "people.csv"
) -> aiohttp.ClientResponse:
    return await client.post("/api/v1/imports", data=_form(content, filename), headers=auth)


async def started(client: Client, auth: dict[str, str], content: bytes, **kw: Any) -> str:
    answer = await upload(client, auth, content, **kw)
    assert answer.status == 202, await answer.text()
    return answer.headers["Location"]


async def state(client: Client, url: str, auth: dict[str, str]) -> dict[str, Any]:
    answer = await client.get(url, headers=auth)
    assert answer.status == 200, await answer.text()
    return dict(await answer.json())


async def until(
    client: Client, url: str, auth: dict[str, str], *statuses: str, timeout: float = 60.0
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await state(client, url, auth)
        if found["status"] in statuses:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"import never became {statuses}: {found}")
        await asyncio.sleep(0.05)


async def contacts(sessions: SessionFactory) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Contact)) or 0)


async def test_two_imports_of_the_same_people_at_once_create_each_person_once(
    client: Client, manager: dict[str, str], sessions: SessionFactory
) -> None:
    sheet = people_csv(3000)
    first, second = await asyncio.gather(
        started(client, manager, sheet), started(client, manager, sheet)
    )
    one = await until(client, first, manager, "done")
    two = await until(client, second, manager, "done")
    assert await contacts(sessions) == 3000
    assert sorted([(one["created"], one["merged"]), (two["created"], two["merged"])]) == [
        (0, 3000),
        (3000, 0),
    ]


async def test_an_import_waits_in_a_visible_queue_while_another_holds_the_turn(
    client: Client, manager: dict[str, str], sessions: SessionFactory
) -> None:
    async with sessions() as session:
        session.add(
            Import(
                filename="other.csv",
                stored_path="/nowhere/other.csv",
                mapping=MAPPING,
                status="running",
                claimed_by="worker:elsewhere:1:abc",
                lease_until=utcnow() + timedelta(seconds=2),
            )
        )
        await session.commit()
    url = await started(client, manager, people_csv(5))
    waiting = await state(client, url, manager)
    assert (waiting["status"], waiting["place"]) == ("queued", 1)
    listed = await (await client.get("/api/v1/imports", headers=manager)).json()
    assert [(i["status"], i["place"]) for i in listed["items"]] == [
        ("queued", 1),
        ("running", None),
    ]
    # The other holder stopped renewing its lease: it is marked interrupted and the queue moves on.
    done = await until(client, url, manager, "done", timeout=30)
    assert done["created"] == 5
    other = listed["items"][1]
    interrupted = await state(client, f"/api/v1/imports/{other['id']}", manager)
    assert interrupted["status"] == "interrupted"
    assert "resume" in interrupted["error"]


async def test_a_running_import_is_cancelled_within_a_second_and_resumes_where_it_stopped(
    client: Client, manager: dict[str, str], sessions: SessionFactory
) -> None:
    total = 40_000
    url = await started(client, manager, people_csv(total))
    running = await until(client, url, manager, "running", "done")
    while running["rows_done"] == 0 and running["status"] == "running":
        running = await state(client, url, manager)
    assert running["status"] == "running", "the import ended before it could be cancelled"
    asked = asyncio.get_running_loop().time()
    cancelled = await client.post(f"{url}/cancel", headers=manager)
    assert cancelled.status == 200, await cancelled.text()
    assert (await cancelled.json())["status"] == "cancelled"
    await asyncio.sleep(1.0)
    first = await state(client, url, manager)
    await asyncio.sleep(0.5)
    assert await state(client, url, manager) == first, "the import went on after its cancel"
    assert asyncio.get_running_loop().time() - asked < 3
    assert first["rows_done"] < total
    assert await contacts(sessions) == first["created"] == first["rows_done"]
    again = await client.post(f"{url}/cancel", headers=manager)
    assert again.status == 409
    resumed = await client.post(f"{url}/resume", headers=manager)
    assert resumed.status == 202, await resumed.text()
    done = await until(client, url, manager, "done", timeout=120)
    assert (done["rows_done"], done["created"], done["merged"], done["rejected"]) == (
        total,
        total,
        0,
        0,
    )
    assert await contacts(sessions) == total


async def test_restart_runs_from_row_one_and_merges_what_was_imported(
    client: Client, manager: dict[str, str], sessions: SessionFactory
) -> None:
    url = await started(client, manager, people_csv(20))
    await until(client, url, manager, "done")
    assert (await client.post(f"{url}/resume", headers=manager)).status == 409
    assert (await client.post(f"{url}/restart", headers=manager)).status == 202
    done = await until(client, url, manager, "done")
    assert (done["rows_done"], done["created"], done["merged"]) == (20, 0, 20)
    assert await contacts(sessions) == 20


async def test_an_import_a_stop_left_running_is_interrupted_on_start_and_resumable(
    aiohttp_client: ClientMaker,
    settings: Settings,
    manager: dict[str, str],
    sessions: SessionFactory,
) -> None:
    async with sessions() as session:
        row = Import(
            filename="people.csv",
            stored_path="/nowhere/people.csv",
            mapping=MAPPING,
            status="running",
            claimed_by="inprocess:here:1:abc",
            lease_until=utcnow() + timedelta(minutes=5),
        )
        session.add(row)
        await session.commit()

    async def opener() -> Hub:
        return await open_hub(settings)

    client = await aiohttp_client(create_app(opener))
    found = await state(client, f"/api/v1/imports/{row.id}", manager)
    assert found["status"] == "interrupted"
    assert "resume" in found["error"]


async def test_files_past_retention_are_deleted_and_the_import_says_so(
    aiohttp_client: ClientMaker,
    client: Client,
    settings: Settings,
    manager: dict[str, str],
    sessions: SessionFactory,
) -> None:
    sheet = people_csv(3) + b"No phone,,\r\n"
    url = await started(client, manager, sheet)
    done = await until(client, url, manager, "done")
    assert done["errors_url"] and not done["file_deleted"]
    async with sessions() as session:
        row = await session.get(Import, done["id"])
        assert row is not None and row.errors_path
        stored, errors = Path(row.stored_path), Path(row.errors_path)
        await session.execute(
            update(Import)
            .where(Import.id == row.id)
            .values(finished_at=utcnow() - timedelta(days=settings.import_retention_days + 1))
        )
        await session.commit()
    assert stored.exists() and errors.exists()

    async def opener() -> Hub:
        return await open_hub(settings)

    later = await aiohttp_client(create_app(opener))
    for _ in range(100):
        gone = await state(later, url, manager)
        if gone["file_deleted"]:
            break
        await asyncio.sleep(0.05)
    assert gone["file_deleted"] and gone["errors_url"] is None
    assert not stored.exists() and not errors.exists()
    assert (await later.get(f"{url}/errors", headers=manager)).status == 404
    assert (await later.post(f"{url}/restart", headers=manager)).status == 409
    assert (gone["created"], gone["rejected"]) == (3, 1)


async def test_rejected_rows_file_neutralises_formulas_in_the_header_too(
    client: Client, manager: dict[str, str]
) -> None:
    sheet = b'Name,Phone,E-mail,"=HYPERLINK(""http://x"")"\r\nNo point,,,x\r\n'
    url = await started(client, manager, sheet)
    done = await until(client, url, manager, "done")
    answer = await client.get(done["errors_url"], headers=manager)
    header = next(csv.reader(io.StringIO((await answer.read()).decode("utf-8-sig"))))
    assert header[-1] == '\'=HYPERLINK("http://x")'


# --- hostile spreadsheets -------------------------------------------------------------

CONTENT_TYPES = (
    '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    'content-types"/>'
)
NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def xlsx(
    sheet_xml: str, shared: list[str] | None = None, *, raw_shared: str | None = None
) -> bytes:
    """A minimal workbook written by hand, so it can say anything a hostile one says."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", CONTENT_TYPES)
        book.writestr("xl/worksheets/sheet1.xml", sheet_xml)
        if raw_shared is not None:
            book.writestr("xl/sharedStrings.xml", raw_shared)
        elif shared is not None:
            items = "".join(f"<si><t>{s}</t></si>" for s in shared)
            book.writestr("xl/sharedStrings.xml", f"<sst {NS}>{items}</sst>")
    return out.getvalue()


def sheet_of(rows: str, dimension: str = "A1:C3") -> str:
    return (
        f'<worksheet {NS}><dimension ref="{dimension}"/><sheetData>{rows}</sheetData></worksheet>'
    )


def row(number: int, *cells: str, padding_to: str | None = None) -> str:
    body = "".join(
        f'<c r="{col}{number}" t="inlineStr"><is><t>{value}</t></is></c>'
        for col, value in zip("ABC", cells, strict=False)
    )
    if padding_to:
        body += f'<c r="{padding_to}{number}" s="1"/>'
    return f'<row r="{number}">{body}</row>'


async def test_xlsx_claiming_column_xfd_imports_only_the_cells_that_exist(
    client: Client, manager: dict[str, str]
) -> None:
    rows = [row(1, "Name", "Phone", "E-mail", padding_to="XFD")]
    rows += [
        row(n, f"P{n}", f"+7916{n:07d}", f"p{n}@example.com", padding_to="XFD")
        for n in range(2, 502)
    ]
    rows += [f'<row r="{n}"><c r="XFD{n}" s="1"/></row>' for n in range(502, 2000)]
    sheet = xlsx(sheet_of("".join(rows), "A1:XFD1048576"))
    url = await started(client, manager, sheet, filename="padded.xlsx")
    done = await until(client, url, manager, "done")
    assert (done["rows_done"], done["created"], done["rejected"]) == (500, 500, 0)
    assert done["errors_url"] is None


async def test_huge_shared_string_fails_naming_the_row_and_column(
    client: Client, manager: dict[str, str]
) -> None:
    sheet = sheet_of(
        row(1, "Name", "Phone", "E-mail")
        + '<row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2" t="inlineStr"><is><t>+79160000001'
        "</t></is></c></row>"
    )
    answer = await upload(client, manager, xlsx(sheet, ["x" * 40_000]), filename="big.xlsx")
    # Refused at upload when the row is read with the header, else the import fails there.
    if answer.status == 202:
        error = (await until(client, answer.headers["Location"], manager, "failed"))["error"]
    else:
        assert answer.status == 422
        error = (await answer.json())["detail"]
    assert "row 2, column A" in error
    assert "32,767" in error


async def test_malformed_or_entity_bomb_xlsx_is_refused_at_upload(
    client: Client, manager: dict[str, str]
) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        f"<sst {NS}><si><t>&lol2;</t></si></sst>"
    )
    cases = {
        "truncated.xlsx": xlsx(sheet_of(row(1, "Name", "Phone"))[:-30]),
        "bomb.xlsx": xlsx(sheet_of(row(1, "Name", "Phone")), raw_shared=bomb),
        "badzip.xlsx": b"PK\x03\x04" + b"\x00" * 100,
        "noheader.xlsx": xlsx(sheet_of("")),
    }
    for name, content in cases.items():
        answer = await upload(client, manager, content, filename=name)
        body = await answer.text()
        assert answer.status == 422, (name, body)
        problem = json.loads(body)
        assert problem["errors"][0]["field"] == "file", (name, problem)
        assert "Traceback" not in body


async def test_csv_with_nul_bytes_or_endless_line_fails_naming_the_row(
    client: Client, manager: dict[str, str]
) -> None:
    nul = people_csv(3) + b"Bad,+79160000009,b\x00d@example.com\r\n"
    url = await started(client, manager, nul)
    failed = await until(client, url, manager, "failed")
    assert "row 5, column C" in failed["error"] and "NUL" in failed["error"]
    endless = people_csv(3) + b"x" * (1024 * 1024)
    url = await started(client, manager, endless)
    failed = await until(client, url, manager, "failed")
    assert "row 5" in failed["error"] and "longer than" in failed["error"]
    assert (await upload(client, manager, b"\x00" * 100 + b"\r\n1,2\r\n")).status == 422
