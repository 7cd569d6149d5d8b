"""Logging in from the browser: back to the page asked for, never to another site."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request

from app_fixtures import PASSWORD
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


@pytest.mark.parametrize(
    "elsewhere", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x", ""]
)
async def test_login_never_sends_the_browser_to_another_site(
    client: Client, elsewhere: str
) -> None:
    assert await _submit(client, elsewhere) == "/"


def test_the_access_log_keeps_no_query_string(caplog: pytest.LogCaptureFixture) -> None:
    request = make_mocked_request("GET", "/contacts?phone=%2B79161234567&q=Ivan")
    logger = logging.getLogger("test.access")
    with caplog.at_level(logging.INFO, logger="test.access"):
        PathOnlyAccessLogger(logger, "").log(request, web.Response(text="ok"), 0.012)
    [line] = caplog.messages
    assert '"GET /contacts" 200' in line
    assert "7916" not in line and "Ivan" not in line
