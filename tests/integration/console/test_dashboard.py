"""The manager's dashboard: each operator's figures for a period, in the viewer's own days."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from itertools import count
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from app_fixtures import log_in
from commhub.models import MissedCall, User
from commhub.store.calls import CALLED_BACK, OPEN
from commhub.web.keys import DATABASE

Client = TestClient[Any, Any]
HTML = {"Accept": "text/html"}
DAY = "period=custom&from=2026-03-10&to=2026-03-10"
_ids = count(1)


class ResultsTable(HTMLParser):
    """The figures of ``#operator-results``: row key (user id or ``total``) → column → text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.names: dict[str, str] = {}
        self._inside = False
        self._row: str | None = None
        self._cell: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and found.get("id") == "operator-results":
            self._inside = True
        elif self._inside and tag == "tr" and found.get("data-operator"):
            self._row = found["data-operator"]
            self.rows[self._row] = {}
        elif self._row and tag in ("td", "th"):
            self._cell = found.get("data-figure") or "name"
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._inside = False
        elif tag in ("td", "th") and self._row and self._cell:
            text = "".join(self._text).strip()
            if self._cell == "name":
                self.names[self._row] = text
            else:
                self.rows[self._row][self._cell] = text
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell:
            self._text.append(data)


def _table(page: str) -> ResultsTable:
    parsed = ResultsTable()
    parsed.feed(page)
    return parsed


async def _user_ids(client: Client) -> dict[str, int]:
    async with client.app[DATABASE]() as session:
        return {u.username: u.id for u in (await session.scalars(select(User))).all()}


async def _set_time_zone(client: Client, username: str, zone: str) -> None:
    async with client.app[DATABASE]() as session:
        await session.execute(update(User).where(User.username == username).values(time_zone=zone))
        await session.commit()


async def _interaction(client: Client, headers: dict[str, str], at: str, **fields: Any) -> int:
    body = {
        "channel": "call",
        "direction": "in",
        "status": "answered",
        "external_id": f"dashboard-test-{next(_ids)}",
        "occurred_at": at,
        **fields,
    }
    made = await client.post("/api/v1/interactions", json=body, headers=headers)
    assert made.status == 201, await made.text()
    return int((await made.json())["id"])


async def _missed(client: Client, interaction_id: int, at: str, state: str) -> None:
    # Interactions recorded through the API do not open a missed-call follow-up (only
    # the PBX's call path does), so the follow-up row is written as that path would.
    async with client.app[DATABASE]() as session:
        session.add(
            MissedCall(
                interaction_id=interaction_id,
                number="+79035550101",
                match_key="9035550101",
                occurred_at=datetime.fromisoformat(at),
                state=state,
            )
        )
        await session.commit()


async def _a_day_of_work(client: Client, operator: dict[str, str], manager: dict[str, str]) -> None:
    """The operator's and the manager's 10 March 2026 (UTC), and calls just outside it."""
    ids = await _user_ids(client)
    op, boss = ids["operator"], ids["manager"]
    ended = {"ended_at": "2026-03-10T23:00:00Z"}
    await _interaction(
        client, operator, "2026-03-10T10:00:00Z", operator_id=op, duration_s=120, **ended
    )
    await _interaction(
        client, operator, "2026-03-10T11:00:00Z", operator_id=op, duration_s=60, **ended
    )
    first_missed = "2026-03-10T12:00:00+00:00"
    missed_open = await _interaction(
        client, operator, first_missed, operator_id=op, status="missed", **ended
    )
    await _missed(client, missed_open, first_missed, OPEN)
    second_missed = "2026-03-10T12:30:00+00:00"
    called_back = await _interaction(
        client, operator, second_missed, operator_id=op, status="missed", **ended
    )
    await _missed(client, called_back, second_missed, CALLED_BACK)
    await _interaction(
        client, operator, "2026-03-10T13:00:00Z", operator_id=op, direction="out", duration_s=300
    )
    await _interaction(
        client,
        operator,
        "2026-03-10T13:30:00Z",
        operator_id=op,
        direction="out",
        status="no_answer",
    )
    await _interaction(
        client,
        operator,
        "2026-03-10T14:00:00Z",
        operator_id=op,
        channel="sms",
        direction="out",
        status="sent",
    )
    await _interaction(
        client,
        operator,
        "2026-03-10T14:10:00Z",
        operator_id=op,
        channel="email",
        direction="out",
        status="sent",
    )
    await _interaction(
        client,
        operator,
        "2026-03-10T14:20:00Z",
        operator_id=op,
        channel="sms",
        direction="in",
        status="received",
    )
    await _interaction(
        client, manager, "2026-03-10T15:00:00Z", operator_id=boss, direction="out", duration_s=30
    )
    # Outside 10 March in UTC; inside it, or the next day, in Novosibirsk (UTC+7).
    await _interaction(client, operator, "2026-03-09T23:59:00Z", operator_id=op, duration_s=45)
    await _interaction(client, operator, "2026-03-11T00:30:00Z", operator_id=op, duration_s=999)


async def test_dashboard_shows_each_operators_figures_and_the_team_total(
    client: Client, operator: dict[str, str], manager: dict[str, str]
) -> None:
    await _a_day_of_work(client, operator, manager)
    await _set_time_zone(client, "manager", "UTC")
    ids = await _user_ids(client)
    await log_in(client, "manager")

    response = await client.get(f"/dashboard?{DAY}", headers=HTML)

    assert response.status == 200, await response.text()
    table = _table(await response.text())
    assert table.rows[str(ids["operator"])] == {
        "calls_in": "4",
        "calls_out": "2",
        "answered": "3",
        "missed": "2",
        "talk_time": "8:00",
        "average_handling_time": "2:40",
        "sms_sent": "1",
        "emails_sent": "1",
        "missed_open": "1",
    }
    assert table.rows[str(ids["manager"])]["calls_out"] == "1"
    assert table.rows[str(ids["manager"])]["talk_time"] == "0:30"
    assert table.rows["total"] == {
        "calls_in": "4",
        "calls_out": "3",
        "answered": "4",
        "missed": "2",
        "talk_time": "8:30",
        "average_handling_time": "2:08",  # 510 s over 4 calls, rounded
        "sms_sent": "1",
        "emails_sent": "1",
        "missed_open": "1",
    }


async def test_every_active_operator_has_a_row_even_without_calls(
    client: Client, admin: dict[str, str]
) -> None:
    made = await client.post(
        "/api/v1/users",
        json={
            "username": "quiet",
            "password": "correct horse battery",
            "role": "operator",
            "display_name": "Quiet <Operator>",
        },
        headers=admin,
    )
    assert made.status == 201, await made.text()
    await log_in(client, "manager")

    page = await (await client.get("/dashboard?period=7d", headers=HTML)).text()

    table = _table(page)
    quiet = str((await made.json())["id"])
    assert table.names[quiet] == "Quiet <Operator>"
    assert table.rows[quiet]["calls_in"] == "0"
    assert table.rows[quiet]["average_handling_time"] == "–"
    assert "Quiet &lt;Operator&gt;" in page and "Quiet <Operator>" not in page


async def test_a_day_is_the_viewers_local_day(
    client: Client, operator: dict[str, str], manager: dict[str, str]
) -> None:
    await _a_day_of_work(client, operator, manager)
    await _set_time_zone(client, "manager", "Asia/Novosibirsk")
    op = str((await _user_ids(client))["operator"])
    await log_in(client, "manager")

    local_10th = _table(await (await client.get(f"/dashboard?{DAY}", headers=HTML)).text())
    local_11th = _table(
        await (
            await client.get("/dashboard?period=custom&from=2026-03-11&to=2026-03-11", headers=HTML)
        ).text()
    )

    # 09 March 23:59 UTC is the 10th in Novosibirsk; 11 March 00:30 UTC is the 11th.
    assert local_10th.rows[op]["calls_in"] == "5"
    assert local_11th.rows[op]["calls_in"] == "1"
    assert local_11th.rows[op]["talk_time"] == "16:39"
    assert local_11th.rows[op]["sms_sent"] == "0"


async def test_a_range_counts_only_what_happened_in_it(
    client: Client, operator: dict[str, str], manager: dict[str, str]
) -> None:
    await _a_day_of_work(client, operator, manager)
    await _set_time_zone(client, "manager", "UTC")
    op = str((await _user_ids(client))["operator"])
    await log_in(client, "manager")

    two_days = _table(
        await (
            await client.get("/dashboard?period=custom&from=2026-03-09&to=2026-03-10", headers=HTML)
        ).text()
    )
    before = _table(
        await (
            await client.get("/dashboard?period=custom&from=2026-03-01&to=2026-03-08", headers=HTML)
        ).text()
    )

    assert two_days.rows[op]["calls_in"] == "5"
    assert before.rows[op]["calls_in"] == "0"
    assert before.rows["total"]["talk_time"] == "0:00"


async def test_the_chart_has_one_group_of_bars_per_operator(
    client: Client, operator: dict[str, str], manager: dict[str, str]
) -> None:
    await _a_day_of_work(client, operator, manager)
    await _set_time_zone(client, "manager", "UTC")
    await log_in(client, "manager")

    page = await (await client.get(f"/dashboard?{DAY}", headers=HTML)).text()

    table = _table(page)
    chart = page[page.index('<svg class="chart"') : page.index("</svg>")]
    groups = re.findall(r'<g class="chart-group" data-operator="(\d+)"', chart)
    assert sorted(groups) == sorted(key for key in table.rows if key != "total")
    assert len(re.findall(r'<rect class="bar-(?:in|out|missed)"', chart)) == 3 * len(groups)
    assert "<title" in chart and "aria-label=" in chart
    assert "style=" not in page


async def test_bad_dates_are_a_message_on_the_page(client: Client) -> None:
    await log_in(client, "manager")

    not_a_date = await client.get("/dashboard?period=custom&from=10.03.2026", headers=HTML)
    backwards = await client.get(
        "/dashboard?period=custom&from=2026-03-11&to=2026-03-10", headers=HTML
    )
    unknown = await client.get("/dashboard?period=fortnight", headers=HTML)

    assert not_a_date.status == 400
    assert "10.03.2026 is not a date" in await not_a_date.text()
    assert backwards.status == 400
    assert "starts after it ends" in await backwards.text()
    assert unknown.status == 400
    assert "no period called fortnight" in await unknown.text()


async def test_an_operator_may_not_open_the_dashboard(client: Client) -> None:
    await log_in(client, "operator")

    response = await client.get("/dashboard", headers=HTML)

    assert response.status == 403
    assert response.content_type == "text/html"


async def test_calls_that_rang_nobody_have_their_own_row_and_count_in_the_total(
    client: Client, manager: dict[str, str]
) -> None:
    at = datetime.now(UTC).replace(microsecond=0).isoformat()
    lost = await _interaction(client, manager, at, status="missed", from_address="+79035550101")
    await _missed(client, lost, at, "open")
    await log_in(client, "manager")

    table = _table(await (await client.get("/dashboard?period=today", headers=HTML)).text())

    assert table.names["0"] == "No operator (rang nobody)"
    assert table.rows["0"]["missed"] == "1" and table.rows["0"]["missed_open"] == "1"
    assert table.rows["total"]["missed"] == "1" and table.rows["total"]["missed_open"] == "1"


async def test_a_missed_call_dismissed_from_home_leaves_the_list_once(
    client: Client, operator: dict[str, str]
) -> None:
    op = (await _user_ids(client))["operator"]
    call = await _interaction(
        client, operator, "2026-03-10T12:00:00Z", operator_id=op, status="missed"
    )
    await _missed(client, call, "2026-03-10T12:00:00+00:00", OPEN)
    csrf = await log_in(client, "operator")
    home = await (await client.get("/")).text()
    button = re.search(r'action="/missed/(\d+)/dismiss"', home)
    assert button is not None
    dismiss = f"/missed/{button.group(1)}/dismiss"

    done = await client.post(dismiss, data={"csrf_token": csrf})
    page = await done.text()
    assert str(done.url).endswith("/") and "Missed call dismissed." in page
    assert dismiss not in page
    listed = await client.get("/api/v1/calls/missed?state=all", headers=operator)
    [missed] = (await listed.json())["items"]
    assert (missed["state"], missed["resolved_by_id"]) == ("dismissed", op)

    again = await client.post(dismiss, data={"csrf_token": csrf})
    assert "Missed call dismissed." in await again.text()  # a second click changes nothing
    relisted = await client.get("/api/v1/calls/missed?state=all", headers=operator)
    assert (await relisted.json())["items"] == [missed]
