"""The templates pages: the list with the shipped templates to copy, the editor's save
(a syntax error names its line and keeps the text), and hostile templates in the preview
the editor's script asks for, which get a clear message and never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from app_fixtures import log_in

Client = TestClient[Any, Any]
HTML = {"Accept": "text/html"}


async def test_the_list_offers_the_shipped_templates_and_a_copy_opens_in_the_editor(
    client: Client,
) -> None:
    csrf = await log_in(client, "marketer")
    listed = await client.get("/templates", headers=HTML)
    assert listed.status == 200
    text = await listed.text()
    assert 'href="/templates" aria-current="page"' in text
    stock = await (await client.get("/api/v1/templates/stock")).json()
    first = stock["items"][0]
    assert f'data-stock="{first["channel"]}/{first["key"]}/{first["language"]}"' in text
    copied = await client.post(
        "/templates/copy",
        data={
            "csrf_token": csrf,
            "channel": first["channel"],
            "key": first["key"],
            "language": first["language"],
        },
        allow_redirects=False,
    )
    assert copied.status == 303
    editor = await client.get(copied.headers["Location"], headers=HTML)
    assert editor.status == 200
    page = await editor.text()
    assert 'id="template-text"' in page
    assert 'sandbox=""' in page  # the e-mail's HTML is shown only in a frame that runs nothing
    unknown = await client.post(
        "/templates/copy",
        data={"csrf_token": csrf, "channel": "sms", "key": "../../etc", "language": "en"},
        allow_redirects=False,
    )
    assert unknown.status == 404


async def test_a_syntax_error_is_refused_with_its_line_and_the_text_kept(client: Client) -> None:
    csrf = await log_in(client, "marketer")
    body = "Hello {{ contact.name }},\nyour order {% if %} is ready"
    refused = await client.post(
        "/templates/new",
        data={
            "csrf_token": csrf,
            "name": "Order ready",
            "channel": "email",
            "language": "en",
            "subject": "Your order",
            "text": body,
            "html": "",
        },
    )
    assert refused.status == 422
    text = await refused.text()
    assert 'id="error-text"' in text
    assert "line 2" in text
    assert "your order {% if %} is ready" in text
    assert 'value="Order ready"' in text


async def test_an_sms_template_is_saved_edited_and_deleted(client: Client) -> None:
    csrf = await log_in(client, "marketer")
    saved = await client.post(
        "/templates/new",
        data={
            "csrf_token": csrf,
            "name": "Reminder",
            "channel": "sms",
            "language": "en",
            "subject": "left over from e-mail",
            "text": "Hi {{ contact.first_name }}",
            "html": "<p>left over</p>",
        },
        allow_redirects=False,
    )
    assert saved.status == 303, await saved.text()
    location = saved.headers["Location"]
    template_id = int(location.rsplit("/", 1)[1])
    stored = await (await client.get(f"/api/v1/templates/{template_id}")).json()
    assert (stored["subject"], stored["html"]) == ("", None)
    edited = await client.post(
        location,
        data={"csrf_token": csrf, "name": "Reminder 2", "language": "en", "text": "Bye"},
        allow_redirects=False,
    )
    assert edited.status == 303
    stored = await (await client.get(f"/api/v1/templates/{template_id}")).json()
    assert (stored["name"], stored["text"], stored["channel"]) == ("Reminder 2", "Bye", "sms")
    too_long = await client.post(
        location,
        data={"csrf_token": csrf, "name": "x" * 201, "language": "en", "text": "Bye"},
    )
    assert too_long.status == 422
    assert 'id="error-name"' in await too_long.text()
    deleted = await client.post(
        f"{location}/delete", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert deleted.status == 303
    assert (await client.get(location, headers=HTML)).status == 404


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "may not use"),
        ("Hello {{ contact.name ", "line 1"),
        (
            "{% for i in range(10) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}",
            "too long",
        ),
    ],
)
async def test_a_hostile_template_in_the_preview_gets_a_clear_message(
    client: Client, source: str, said: str
) -> None:
    """The preview as the editor's script asks for it: the session cookie and its CSRF header."""
    csrf = await log_in(client, "marketer")
    shown = await client.post(
        "/api/v1/templates/preview",
        json={"channel": "email", "subject": "Hi", "text": source, "virtual": True},
        headers={"X-CSRF-Token": csrf},
    )
    assert shown.status == 422, await shown.text()
    problem = await shown.json()
    assert problem["errors"][0]["field"] == "text"
    assert said in problem["detail"]
    assert "Traceback" not in problem["detail"]


async def test_the_pages_speak_russian(client: Client) -> None:
    await log_in(client, "marketer")
    russian = {"Accept": "text/html", "Accept-Language": "ru"}
    for path, heading in (
        ("/segments", "Сегменты"),
        ("/segments/new", "Новый сегмент"),
        ("/templates", "Шаблоны"),
        ("/templates/new", "Новый шаблон"),
    ):
        shown = await client.get(path, headers=russian)
        assert shown.status == 200
        assert f"<h1>{heading}</h1>" in await shown.text()


async def test_the_preview_frame_shows_the_html_with_a_received_emails_policy(
    client: Client,
) -> None:
    """The editor's frame: its styles allowed, nothing else; too large or forged is refused."""
    csrf = await log_in(client, "marketer")
    html = "<p style='color: red'>Hi Alex</p><script>alert(1)</script>"
    shown = await client.post(
        "/templates/preview-frame", data={"csrf_token": csrf, "html": html}, headers=HTML
    )
    assert shown.status == 200
    assert await shown.text() == html
    policy = shown.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox;")  # a unique origin where no script runs
    assert "style-src 'unsafe-inline'" in policy
    assert "script-src" not in policy and "default-src 'none'" in policy
    assert shown.headers["X-Frame-Options"] == "SAMEORIGIN"
    huge = await client.post(
        "/templates/preview-frame",
        data={"csrf_token": csrf, "html": "x" * (700 * 1024)},
        headers=HTML,
    )
    assert huge.status in (413, 422), huge.status
    forged = await client.post("/templates/preview-frame", data={"html": html}, headers=HTML)
    assert forged.status == 403
