"""Logging in from the browser: back to the page asked for, never to another site."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request

from app_fixtures import PASSWORD, log_in
from commhub.web.access_log import PathOnlyAccessLogger

Client = TestClient[Any, Any]


async def _submit(client: Client, next_page: str) -> str:
    form = await (await client.get("/login")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    done = await client.post(
        "/login",
        data={
            "username": "operator",
            "password": PASSWORD,
            "csrf_token": token.group(1),
            "next": next_page,
        },
        allow_redirects=False,
    )
    assert done.status == 303
    return done.headers["Location"]


async def test_a_page_asked_for_before_login_is_where_login_leads(client: Client) -> None:
    asked = await client.get("/contacts?phone=89161234567", allow_redirects=False)
    assert asked.status == 303
    assert asked.headers["Location"] == "/login?next=/contacts?phone%3D89161234567"
    form = await (await client.get(asked.headers["Location"])).text()
    assert 'name="next" value="/contacts?phone=89161234567"' in form
    assert await _submit(client, "/contacts?phone=89161234567") == "/contacts?phone=89161234567"


OFF_SITE = [
    "//evil.example/",
    "///evil.example/",
    "https://evil.example/",
    "HTTPS://evil.example/",
    "/\\evil.example",
    "\\/evil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/%2F%2Fevil.example",
    "/%252F%252Fevil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/%09/evil.example",
    " //evil.example",
    "/\u2028/evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
]


async def test_login_never_sends_the_browser_to_another_site(client: Client) -> None:
    landed = {elsewhere: await _submit(client, elsewhere) for elsewhere in OFF_SITE}
    assert landed == dict.fromkeys(OFF_SITE, "/")


@pytest.mark.parametrize(
    "elsewhere", ["//evil.example/", "/%5Cevil", "/\\evil", "https://x.example"]
)
async def test_the_login_form_never_carries_an_off_site_next_page(
    client: Client, elsewhere: str
) -> None:
    form = await (await client.get("/login", params={"next": elsewhere})).text()
    assert 'name="next" value="/"' in form
    assert "evil" not in form and "x.example" not in form


async def test_a_local_page_with_non_ascii_text_is_kept_and_encoded(client: Client) -> None:
    assert await _submit(client, "/contacts?q=Иван") == "/contacts?q=%D0%98%D0%B2%D0%B0%D0%BD"


@pytest.mark.parametrize(
    "referer",
    [
        "https://evil.example/contacts/1",
        "{origin}//evil.example/x",
        "{origin}/\\evil.example",
        "{origin}/%5Cevil.example",
        "{origin}.evil.example/x",
        "javascript:alert(1)",
    ],
)
async def test_a_form_never_goes_back_to_a_referer_off_the_hub(
    client: Client, referer: str
) -> None:
    csrf = await log_in(client, "operator")
    origin = str(client.make_url("")).rstrip("/")
    done = await client.post(
        "/missed/999999/dismiss",
        data={"csrf_token": csrf},
        headers={"Referer": referer.format(origin=origin)},
        allow_redirects=False,
    )
    assert done.status == 303
    assert done.headers["Location"] == "/"


async def test_a_form_goes_back_to_the_local_page_it_came_from(client: Client) -> None:
    csrf = await log_in(client, "operator")
    origin = str(client.make_url("")).rstrip("/")
    done = await client.post(
        "/missed/999999/dismiss",
        data={"csrf_token": csrf},
        headers={"Referer": f"{origin}/contacts?q=ivan"},
        allow_redirects=False,
    )
    assert done.status == 303
    assert done.headers["Location"] == "/contacts?q=ivan"


def test_the_access_log_keeps_no_query_string(caplog: pytest.LogCaptureFixture) -> None:
    request = make_mocked_request("GET", "/contacts?phone=%2B79161234567&q=Ivan")
    logger = logging.getLogger("test.access")
    with caplog.at_level(logging.INFO, logger="test.access"):
        PathOnlyAccessLogger(logger, "").log(request, web.Response(text="ok"), 0.012)
    [line] = caplog.messages
    assert '"GET /contacts" 200' in line
    assert "7916" not in line and "Ivan" not in line
