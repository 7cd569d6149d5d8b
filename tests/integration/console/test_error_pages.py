"""Console addresses answer errors as pages in the reader's language, never as JSON.

The API keeps its problem documents; a script that asks a console address for
JSON alone still gets one.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from app_fixtures import log_in

Client = TestClient[Any, Any]


async def _speak(client: Client, admin: dict[str, str], username: str, locale: str) -> None:
    listed = await (await client.get("/api/v1/users", headers=admin)).json()
    user_id = next(u["id"] for u in listed["items"] if u["username"] == username)
    changed = await client.patch(f"/api/v1/users/{user_id}", json={"locale": locale}, headers=admin)
    assert changed.status == 200, await changed.text()


async def _page(response: Any, status: int) -> str:
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "text/html", text
    assert "Traceback" not in text and '"type": "about:blank"' not in text
    return text


@pytest.mark.parametrize(("locale", "heading"), [("ru", "Не найдено"), ("en", "Not found")])
async def test_missing_pages_speak_the_readers_language(
    client: Client, admin: dict[str, str], locale: str, heading: str
) -> None:
    await _speak(client, admin, "manager", locale)
    await log_in(client, "manager")
    for path in (
        "/contacts/١",
        "/contacts/99999999999999999999",
        "/no-such-page",
        "/emails/threads/4242",
    ):
        text = await _page(await client.get(path), 404)
        assert heading in text, path
        assert f'lang="{locale}"' in text


async def test_refusals_and_bad_requests_are_pages_in_russian(
    client: Client, admin: dict[str, str]
) -> None:
    await _speak(client, admin, "operator", "ru")
    csrf = await log_in(client, "operator")
    refused = await _page(await client.get("/log"), 403)
    assert "Доступ запрещён" in refused
    wrong_method = await _page(await client.put("/contacts"), 405)
    assert "Этот адрес так не работает" in wrong_method
    form = f"csrf_token={csrf}&name=" + "x" * (2 * 1024 * 1024)
    too_large = await client.post(
        "/contacts/new",
        data=io.BytesIO(form.encode()),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert "Слишком большой объём" in await _page(too_large, 413)


async def test_dates_past_the_span_are_a_message_not_a_failure(client: Client) -> None:
    await log_in(client, "manager")
    for query in (
        "period=custom&from=9999-12-31",
        "period=custom&from=0001-01-01&to=0001-01-02",
        "period=custom&from=2026-01-01&to=9999-12-31",
    ):
        text = await _page(await client.get(f"/dashboard?{query}"), 400)
        assert "is not a date between 1970-01-01 and 2100-12-31" in text, query
    for query in ("from=9999-12-31", "to=9999-12-31", "from=0001-01-01", "to=0001-01-01"):
        response = await client.get(f"/log?{query}")
        assert response.status < 500
        assert "between 1970-01-01 and 2100-12-31" in await response.text(), query
        exported = await client.get(f"/log/export.xlsx?{query}", allow_redirects=False)
        assert exported.status == 303  # back to the log, which says what is wrong


async def test_a_script_asking_for_json_still_gets_a_problem(client: Client) -> None:
    await log_in(client, "operator")
    response = await client.get("/contacts/١", headers={"Accept": "application/json"})
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    api = await client.get("/api/v1/contacts/١", headers={"Accept": "text/html"})
    assert api.status == 404
    assert api.content_type == "application/problem+json"


async def test_the_nul_character_in_a_form_or_an_address_is_a_page(client: Client) -> None:
    csrf = await log_in(client, "manager")
    for path in ("/contacts?q=%00", "/log?q=a%00"):
        await _page(await client.get(path), 400)
    made = await client.post("/contacts/new", data={"csrf_token": csrf, "name": "Iv\x00an"})
    await _page(made, 400)
