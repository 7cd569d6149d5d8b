"""Campaigns in the console: the list, the form, the buttons, live progress and the CSV.

Through the real app, logged in through the login form as a browser is: the
hub sends through a mailbox whose server is aiosmtpd on loopback, in a zone
where it is about midday now, so the campaign goes whatever the hour.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from app_fixtures import log_in
from commhub.bootstrap import Hub, open_hub
from commhub.channels import ChannelContext
from commhub.config import Settings
from commhub.domain.contacts import ConsentChoice, ContactDraft
from commhub.domain.roles import Role
from commhub.models import MessageTemplate
from commhub.services import contacts
from commhub.store.engine import SessionFactory
from commhub.web.app import create_app
from commhub_email import adapter
from daylight import midday_zone
from smtp_sink import SmtpSink
from static_lists import static_list

Client = TestClient[Any, Any]
RUSSIAN = {"Accept-Language": "ru-RU,ru;q=0.9"}
MARKETING = ConsentChoice("email", "marketing", True)
FORMULA_NAME = '=HYPERLINK("http://evil.example","x")'


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    server = SmtpSink()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def hub(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    accounts: dict[Role, Any],
    sink: SmtpSink,
) -> Client:
    """The app with one mailbox, "news", sending to the sink."""
    options = {
        "address": "news@example.com",
        "display_name": "Example News",
        "max_message_mb": 1,
        "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "plain", "connections": 1},
    }
    channel = adapter(name="news", options=options, context=ChannelContext(phone_region="RU"))

    async def opener() -> Hub:
        return await open_hub(
            settings.model_copy(
                update={"public_url": "https://hub.example", "time_zone": midday_zone()}
            ),
            channels=[channel],
        )

    return await aiohttp_client(create_app(opener))


async def audience(sessions: SessionFactory, count: int) -> tuple[int, int]:
    """A static segment of ``count`` consenting people (the first named like a formula) and
    one without consent, plus an e-mail template; their ids."""
    ids = []
    for n in range(count + 1):
        view = await contacts.create_contact(
            sessions,
            ContactDraft(
                name=FORMULA_NAME if n == 0 else f"Person {n}",
                emails=(f"p{n}@client.example",),
                consents=(MARKETING,) if n < count else (),
            ),
            owner_id=None,
            source="test",
        )
        ids.append(view.id)
    news = MessageTemplate(
        name="Winter news",
        channel="email",
        subject="News for {{ contact.first_name }}",
        text="Hello!\nUnsubscribe: {{ unsubscribe_url }}\n",
    )
    segment_id, (template_id,) = await static_list(sessions, "Winter list", ids, news)
    return segment_id, template_id


def form(csrf: str, segment_id: int, template_id: int, /, **changes: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "name": "Winter news",
        "channel": "email",
        "purpose": "marketing",
        "segment_id": str(segment_id),
        "email_template_id": str(template_id),
        "mailbox": "news",
        "schedule": "now",
        "start_at": "",
        "window_from": "",
        "window_to": "",
        "rate": "",
        "bounce_limit": "5",
        "complaint_limit": "0.1",
        **changes,
    }


async def created(client: Client, data: dict[str, str]) -> int:
    response = await client.post("/campaigns/new", data=data, allow_redirects=False)
    assert response.status == 303, await response.text()
    found = re.fullmatch(r"/campaigns/(\d+)", response.headers["Location"])
    assert found is not None
    return int(found.group(1))


async def progress(client: Client, campaign_id: int) -> dict[str, Any]:
    response = await client.get(f"/campaigns/{campaign_id}/progress")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def until(client: Client, campaign_id: int, state: str) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        while (body := await progress(client, campaign_id))["state"] != state:
            await asyncio.sleep(0.1)
        return body

    return await asyncio.wait_for(poll(), 30)


async def act(client: Client, csrf: str, campaign_id: int, action: str) -> str:
    """Press a button on the campaign's page; the page it comes back to."""
    response = await client.post(
        f"/campaigns/{campaign_id}/{action}", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert (response.status, response.headers["Location"]) == (303, f"/campaigns/{campaign_id}")
    return await (await client.get(f"/campaigns/{campaign_id}")).text()


async def test_a_campaign_set_up_in_the_form_runs_from_its_page_to_the_end(
    hub: Client, sessions: SessionFactory, sink: SmtpSink
) -> None:
    segment_id, template_id = await audience(sessions, 4)
    csrf = await log_in(hub, "marketer")
    new = await (await hub.get("/campaigns/new")).text()
    assert "Winter list" in new and "Winter news" in new and "news@example.com" in new
    campaign_id = await created(hub, form(csrf, segment_id, template_id, rate="1"))
    page = await (await hub.get(f"/campaigns/{campaign_id}")).text()
    assert "Campaign saved." in page and 'id="start-campaign"' in page
    assert 'data-when="draft scheduled">' in page and 'data-when="running" hidden>' in page
    assert 'data-live="no"' in page  # a draft has nothing to watch
    listing = await (await hub.get("/campaigns?state=draft")).text()
    assert f'data-campaign="{campaign_id}" data-state="draft"' in listing
    assert (
        f'data-campaign="{campaign_id}"'
        not in await (await hub.get("/campaigns?state=running")).text()
    )

    started = await act(hub, csrf, campaign_id, "start")
    assert "Campaign started." in started
    running = await until(hub, campaign_id, "running")
    assert running["total"] == 4 and running["counts"]["excluded"] == 1
    assert running["excluded"] == {"no_consent": 1}
    paused = await act(hub, csrf, campaign_id, "pause")
    assert "Campaign paused." in paused
    assert 'data-when="paused">' in paused and 'data-when="running" hidden>' in paused
    assert (await progress(hub, campaign_id))["state"] == "paused"
    resumed = await act(hub, csrf, campaign_id, "resume")
    assert "Campaign resumed." in resumed

    done = await until(hub, campaign_id, "finished")
    assert done["counts"]["sent"] == 4 and done["done"] == 4 and done["percent"] == 100
    assert len(sink.messages) == 4
    assert 'data-sent="4"' in done["chart_html"] or "bar-out" in done["chart_html"]
    assert sum(int(n) for n in re.findall(r'data-sent="(\d+)"', done["chart_html"])) == 4
    page = await (await hub.get(f"/campaigns/{campaign_id}?status=excluded")).text()
    assert "no consent recorded" in page and 'data-status="excluded"' in page
    assert '<div class="actions" id="campaign-actions" hidden>' in page
    listed = await (await hub.get("/campaigns")).text()
    assert "4 / 4" in listed

    exported = await hub.get(f"/campaigns/{campaign_id}/recipients.csv")
    assert exported.status == 200 and exported.content_type == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    text = (await exported.read()).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0][:5] == ["Contact ID", "Name", "Channel", "Address", "Status"]
    assert len(rows) == 6
    assert [r[4] for r in rows[1:]].count("sent") == 4
    assert "'" + FORMULA_NAME in [r[1] for r in rows[1:]]
    assert not any(cell.startswith("=") for row in rows for cell in row)
    only_left_out = await (
        await hub.get(f"/campaigns/{campaign_id}/recipients.csv?status=excluded")
    ).read()
    assert len(list(csv.reader(io.StringIO(only_left_out.decode("utf-8-sig"))))) == 2
    russian = (
        await (await hub.get(f"/campaigns/{campaign_id}/recipients.csv", headers=RUSSIAN)).read()
    ).decode("utf-8-sig")
    header = russian.splitlines()[0]
    assert "Адрес" in header and "Причина" in header and "Contact ID" not in header


async def test_refused_values_come_back_next_to_their_field_as_typed(
    hub: Client, sessions: SessionFactory
) -> None:
    segment_id, template_id = await audience(sessions, 1)
    csrf = await log_in(hub, "marketer")
    cases = {
        "name": {"name": "  "},
        "rate": {"rate": "fast"},
        "window_from": {"window_from": "06:00", "window_to": "23:00"},
        "segment_id": {"segment_id": "424242"},
        "email_template_id": {"email_template_id": "x1"},
        "start_at": {"schedule": "at", "start_at": "tomorrow morning"},
        "channel": {"channel": "pigeon"},
    }
    for field, changes in cases.items():
        response = await hub.post(
            "/campaigns/new", data=form(csrf, segment_id, template_id, **changes)
        )
        assert response.status == 422, field
        page = await response.text()
        assert f'id="error-{field}"' in page, (field, page)
        assert 'value="Winter news"' in page or field == "name"
    kept = await hub.post(
        "/campaigns/new", data=form(csrf, segment_id, template_id, name="Keep me", rate="-1")
    )
    page = await kept.text()
    assert kept.status == 422 and 'value="Keep me"' in page and 'value="-1"' in page
    assert "more than 0, at most 1000" in page
    russian = await hub.post(
        "/campaigns/new", data=form(csrf, segment_id, template_id, rate="0"), headers=RUSSIAN
    )
    assert "больше 0, не больше 1000" in await russian.text()
    window = await hub.post(
        "/campaigns/new",
        data=form(csrf, segment_id, template_id, window_from="07:00", window_to="23:00"),
        headers=RUSSIAN,
    )
    assert "ночью сообщения не отправляются" in await window.text()
    assert 'id="no-campaigns"' in await (await hub.get("/campaigns")).text()


@pytest.mark.parametrize(
    "changes",
    [
        {"rate": "1e999"},
        {"rate": "nan"},
        {"bounce_limit": "-inf"},
        {"start_at": "99999-01-01T00:00"},
        {"start_at": "0001-01-01T00:00"},
        {"window_from": "99"},
        {"window_from": "٠٩:٠٠", "window_to": "10"},
        {"segment_id": "9" * 40},
        {"mailbox": "m" * 500},
        {"name": "x" * 10_000},
        {"purpose": "'; DROP TABLE campaigns; --"},
        {"schedule": "at", "start_at": ""},
    ],
)
async def test_no_input_gets_a_server_error(
    hub: Client, sessions: SessionFactory, changes: dict[str, str]
) -> None:
    segment_id, template_id = await audience(sessions, 1)
    csrf = await log_in(hub, "marketer")
    response = await hub.post(
        "/campaigns/new", data=form(csrf, segment_id, template_id, **changes), allow_redirects=False
    )
    assert response.status in (303, 422), await response.text()


async def test_a_draft_is_changed_in_the_form_and_an_ended_one_no_longer(
    hub: Client, sessions: SessionFactory
) -> None:
    segment_id, template_id = await audience(sessions, 1)
    csrf = await log_in(hub, "marketer")
    campaign_id = await created(hub, form(csrf, segment_id, template_id))
    edit = await (await hub.get(f"/campaigns/{campaign_id}/edit")).text()
    assert 'value="Winter news"' in edit
    saved = await hub.post(
        f"/campaigns/{campaign_id}/edit",
        data=form(
            csrf,
            segment_id,
            template_id,
            name="Spring news",
            window_from="10:00",
            window_to="18:00",
        ),
        allow_redirects=False,
    )
    assert saved.status == 303
    again = await (await hub.get(f"/campaigns/{campaign_id}/edit")).text()
    assert 'value="Spring news"' in again and 'value="10:00"' in again and 'value="18:00"' in again
    refused = await hub.post(
        f"/campaigns/{campaign_id}/edit", data=form(csrf, segment_id, template_id, rate="x")
    )
    assert refused.status == 422

    cancelled = await act(hub, csrf, campaign_id, "cancel")
    assert "Campaign cancelled." in cancelled
    assert (await progress(hub, campaign_id))["state"] == "cancelled"
    late = await hub.get(f"/campaigns/{campaign_id}/edit", allow_redirects=False)
    assert (late.status, late.headers["Location"]) == (303, f"/campaigns/{campaign_id}")
    shown = await (await hub.get(f"/campaigns/{campaign_id}")).text()
    assert "Only a draft or a scheduled campaign can be changed." in shown
    twice = await act(hub, csrf, campaign_id, "cancel")
    assert "Not done:" in twice
    russian = await hub.post(
        f"/campaigns/{campaign_id}/start", data={"csrf_token": csrf}, headers=RUSSIAN
    )
    assert "Не выполнено" in await russian.text() or russian.status == 200


async def test_a_start_missing_something_says_what_in_the_users_language(
    hub: Client, sessions: SessionFactory
) -> None:
    segment_id, template_id = await audience(sessions, 1)
    csrf = await log_in(hub, "marketer")
    campaign_id = await created(hub, form(csrf, segment_id, template_id, mailbox=""))
    page = await act(hub, csrf, campaign_id, "start")
    assert "choose a mailbox this hub sends from" in page
    await hub.post("/profile", data={"csrf_token": csrf, "locale": "ru"}, allow_redirects=False)
    refused = await hub.post(
        f"/campaigns/{campaign_id}/start", data={"csrf_token": csrf}, headers=RUSSIAN
    )
    assert "выберите почтовый ящик" in await refused.text()


async def test_managers_read_campaigns_and_operators_do_not_see_them(
    hub: Client, sessions: SessionFactory
) -> None:
    segment_id, template_id = await audience(sessions, 1)
    marketer_csrf = await log_in(hub, "marketer")
    campaign_id = await created(hub, form(marketer_csrf, segment_id, template_id))
    home = await (await hub.get("/")).text()
    assert 'href="/campaigns"' in home
    await hub.post("/logout", data={"csrf_token": marketer_csrf})

    csrf = await log_in(hub, "manager")
    listing = await (await hub.get("/campaigns")).text()
    assert f'data-campaign="{campaign_id}"' in listing and 'id="new-campaign"' not in listing
    page = await (await hub.get(f"/campaigns/{campaign_id}")).text()
    assert "Winter news" in page and 'id="start-campaign"' not in page
    assert (await hub.get(f"/campaigns/{campaign_id}/progress")).status == 200
    assert (await hub.get(f"/campaigns/{campaign_id}/recipients.csv")).status == 200
    assert (await hub.get("/campaigns/new")).status == 403
    assert (await hub.get("/campaigns/424242")).status == 404
    for query in ("after=abc&status=zzz", "after=-5", "after=" + "9" * 30, "status=%ff"):
        odd = await hub.get(f"/campaigns/{campaign_id}?{query}")
        assert odd.status == 200, query
        assert (await hub.get(f"/campaigns/{campaign_id}/recipients.csv?{query}")).status == 200
    assert (await hub.get("/campaigns?state=%ff%fe")).status == 200
    # The hub refuses a NUL in any query as a client error, never a failure.
    assert (await hub.get(f"/campaigns/{campaign_id}?status=%00")).status == 400
    start = await hub.post(f"/campaigns/{campaign_id}/start", data={"csrf_token": csrf})
    assert start.status == 403
    await hub.post("/logout", data={"csrf_token": csrf})

    await log_in(hub, "operator")
    assert 'href="/campaigns"' not in await (await hub.get("/")).text()
    for path in ("/campaigns", f"/campaigns/{campaign_id}", f"/campaigns/{campaign_id}/progress"):
        assert (await hub.get(path)).status == 403, path
