"""Message templates through the API: checked on save, previewed with a real contact."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from commhub.domain.contacts import ContactDraft
from commhub.domain.phones import parse_phone
from commhub.domain.roles import Role
from commhub.services import contacts
from commhub.store.engine import SessionFactory

Client = TestClient[Any, Any]


async def test_a_template_is_saved_checked_and_previewed_with_a_contact(
    client: Client, accounts: dict[Role, Any], sessions: SessionFactory
) -> None:
    auth = accounts[Role.MARKETER].auth
    broken = await client.post(
        "/api/v1/templates",
        json={
            "name": "Broken",
            "channel": "email",
            "subject": "Hi",
            "text": "Hello\n{% if contact.name %}\nno end",
        },
        headers=auth,
    )
    assert broken.status == 422
    problem = await broken.json()
    assert "line" in problem["detail"]

    saved = await client.post(
        "/api/v1/templates",
        json={
            "name": "Welcome",
            "channel": "email",
            "language": "ru",
            "subject": "Добро пожаловать, {{ contact.first_name | default('друг') }}",
            "text": "Здравствуйте, {{ contact.name }}! {{ deal.title | default('') }}",
            "html": "<p>{{ contact.name }}</p>",
        },
        headers=auth,
    )
    assert saved.status == 201, await saved.text()
    template = await saved.json()

    view = await contacts.create_contact(
        sessions,
        ContactDraft(name="Анна <b>Смирнова</b>", phones=(parse_phone("+79161234567", "RU"),)),
        owner_id=None,
        source="test",
    )
    fields = {k: template[k] for k in ("channel", "language", "subject", "text", "html")}
    shown = await client.post(
        "/api/v1/templates/preview", json={**fields, "contact_id": view.id}, headers=auth
    )
    assert shown.status == 200, await shown.text()
    body = await shown.json()
    assert body["subject"] == "Добро пожаловать, Анна"
    assert body["text"] == "Здравствуйте, Анна <b>Смирнова</b>! "
    assert body["html"] == "<p>Анна &lt;b&gt;Смирнова&lt;/b&gt;</p>"

    empty = await client.post("/api/v1/templates/preview", json=fields, headers=auth)
    assert (await empty.json())["subject"] == "Добро пожаловать, друг"

    listed = await client.get("/api/v1/templates", headers=auth)
    assert [t["name"] for t in (await listed.json())["items"]] == ["Welcome"]


async def test_an_sms_preview_says_its_encoding_and_segments(
    client: Client, accounts: dict[Role, Any]
) -> None:
    auth = accounts[Role.MARKETER].auth
    latin = await client.post(
        "/api/v1/templates/preview",
        json={"channel": "sms", "text": "Sale: 10% off until Friday"},
        headers=auth,
    )
    assert (await latin.json())["sms"] == {"encoding": "gsm7", "segments": 1, "units": 26}
    cyrillic = await client.post(
        "/api/v1/templates/preview",
        json={"channel": "sms", "text": "Скидка 10% до пятницы " * 4},
        headers=auth,
    )
    shape = (await cyrillic.json())["sms"]
    assert shape["encoding"] == "ucs2"
    assert shape["segments"] == 2


async def test_a_template_reaching_outside_the_sandbox_is_refused_not_run(
    client: Client, accounts: dict[Role, Any]
) -> None:
    auth = accounts[Role.MARKETER].auth
    escape = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    shown = await client.post(
        "/api/v1/templates/preview", json={"channel": "sms", "text": escape}, headers=auth
    )
    assert shown.status == 422
    assert "__class__" not in (await shown.json()).get("text", "")


async def test_the_virtual_client_fills_every_variable_and_a_real_one_shows_what_is_missing(
    client: Client, accounts: dict[Role, Any], sessions: SessionFactory
) -> None:
    auth = accounts[Role.MARKETER].auth
    fields = {
        "channel": "email",
        "language": "ru",
        "subject": "{{ contact.first_name }}, {{ deal.title }}",
        "text": "{{ contact.company }} / {{ owner.name }} / {{ deal.amount }}",
    }
    virtual = await client.post(
        "/api/v1/templates/preview", json={**fields, "virtual": True}, headers=auth
    )
    body = await virtual.json()
    assert body["subject"] == "Анна, Годовой контракт на поставку"
    assert body["missing"] == []

    view = await contacts.create_contact(
        sessions, ContactDraft(name="Олег"), owner_id=None, source="test"
    )
    real = await client.post(
        "/api/v1/templates/preview", json={**fields, "contact_id": view.id}, headers=auth
    )
    assert (await real.json())["missing"] == ["amount", "company", "name", "title"]

    segment = await client.post(
        "/api/v1/segments",
        json={"name": "Everyone", "rules": {"field": "name", "op": "contains", "value": "о"}},
        headers=auth,
    )
    gaps = await client.post(
        "/api/v1/templates/missing",
        json={**fields, "segment_id": (await segment.json())["id"]},
        headers=auth,
    )
    found = await gaps.json()
    assert found["count"] == 1
    assert found["people"] == [
        {"contact_id": view.id, "name": "Олег", "missing": ["amount", "company", "name", "title"]}
    ]
