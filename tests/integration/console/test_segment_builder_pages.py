"""The segments pages: the list, the builder's save (a refusal keeps what was typed and
names the rule's path), static lists' members, and who may open them."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from aiohttp.test_utils import TestClient

from app_fixtures import log_in
from commhub.domain.contacts import ContactDraft
from commhub.services import contacts
from commhub.store.engine import SessionFactory

Client = TestClient[Any, Any]
HTML = {"Accept": "text/html"}


async def _people(sessions: SessionFactory) -> dict[str, int]:
    made = {}
    for name, city, tags in (
        ("Ann Lee", "Moscow", ("vip",)),
        ("Boris Ivanov", "Kazan", ("vip",)),
        ("Vera Orlova", "Moscow", ()),
    ):
        view = await contacts.create_contact(
            sessions,
            ContactDraft(name=name, tags=tags, extra={"city": city}),
            owner_id=None,
            source="test",
        )
        made[name.split()[0].lower()] = view.id
    return made


def _hidden_rules(text: str) -> Any:
    found = re.search(r'name="rules" id="segment-rules" value="([^"]*)"', text)
    assert found is not None
    return json.loads(html.unescape(found.group(1)))


async def test_a_marketer_sees_the_list_and_the_builder_with_its_nav_entries(
    client: Client,
) -> None:
    await log_in(client, "marketer")
    listed = await client.get("/segments", headers=HTML)
    assert listed.status == 200
    text = await listed.text()
    assert 'href="/segments" aria-current="page"' in text
    assert 'href="/templates"' in text
    assert 'href="/segments/new"' in text
    builder = await client.get("/segments/new", headers=HTML)
    assert builder.status == 200
    page = await builder.text()
    assert 'id="builder"' in page
    options = re.search(r'id="segment-options">(.*?)</script>', page, re.S)
    assert options is not None
    # The builder offers exactly the fields and operators the domain reads.
    assert json.loads(html.unescape(options.group(1)))["ops"]["deal"] == [
        "open",
        "won_after",
        "lost_after",
        "any",
    ]


async def test_a_manager_builds_segments_but_writes_no_templates_and_an_operator_neither(
    client: Client,
) -> None:
    await log_in(client, "manager")
    assert (await client.get("/segments", headers=HTML)).status == 200
    text = await (await client.get("/", headers=HTML)).text()
    assert 'href="/segments"' in text
    assert 'href="/templates"' not in text
    refused = await client.get("/templates", headers=HTML)
    assert refused.status == 403
    assert refused.content_type == "text/html"
    await client.post("/logout", data={"csrf_token": await _csrf(client)})
    await log_in(client, "operator")
    assert (await client.get("/segments", headers=HTML)).status == 403
    assert (await client.get("/templates/new", headers=HTML)).status == 403


async def _csrf(client: Client) -> str:
    me = await client.get("/api/v1/auth/me")
    return str((await me.json())["csrf_token"])


async def test_saving_rules_with_an_or_inside_an_and_counts_who_matches(
    client: Client, sessions: SessionFactory
) -> None:
    people = await _people(sessions)
    csrf = await log_in(client, "marketer")
    rules = {
        "all": [
            {"field": "city", "op": "equals", "value": "Moscow"},
            {
                "any": [
                    {"field": "tag", "op": "has", "value": "vip"},
                    {"field": "deal", "op": "open"},
                ]
            },
        ]
    }
    saved = await client.post(
        "/segments/new",
        data={
            "csrf_token": csrf,
            "name": "Moscow VIPs",
            "kind": "dynamic",
            "rules": json.dumps(rules),
        },
        allow_redirects=False,
    )
    assert saved.status == 303
    location = saved.headers["Location"]
    segment_id = int(location.rsplit("/", 1)[1])
    shown = await client.get(f"/api/v1/segments/{segment_id}")
    assert (await shown.json())["count"] == 1
    members = await client.get(f"/api/v1/segments/{segment_id}/members")
    assert [m["id"] for m in (await members.json())["sample"]] == [people["ann"]]
    page = await client.get(location, headers=HTML)
    text = await page.text()
    assert "Moscow VIPs" in text
    assert _hidden_rules(text) == rules


async def test_a_refused_rule_keeps_what_was_typed_and_names_the_node(client: Client) -> None:
    csrf = await log_in(client, "marketer")
    rules = {
        "all": [
            {"field": "city", "op": "equals", "value": "Moscow"},
            {"any": [{"field": "tag", "op": "has", "value": "  "}]},
        ]
    }
    refused = await client.post(
        "/segments/new",
        data={
            "csrf_token": csrf,
            "name": "Typed name",
            "kind": "dynamic",
            "rules": json.dumps(rules),
        },
    )
    assert refused.status == 422
    text = await refused.text()
    assert 'value="Typed name"' in text
    assert _hidden_rules(text) == rules
    assert 'data-error-path="rules.all[1].any[0].value"' in text
    assert "a tag&#39;s name" in text
    unreadable = await client.post(
        "/segments/new",
        data={"csrf_token": csrf, "name": "Broken", "kind": "dynamic", "rules": "{not json"},
    )
    assert unreadable.status == 422
    assert "not readable JSON" in await unreadable.text()
    for raw in (
        "[" * 5000 + "]" * 5000,
        '{"all": [{"field": "owner", "op": "equals", "value": NaN}]}',
    ):
        hostile = await client.post(
            "/segments/new",
            data={"csrf_token": csrf, "name": "Hostile", "kind": "dynamic", "rules": raw},
        )
        assert hostile.status == 422
        assert 'id="rules-error"' in await hostile.text()
    nameless = await client.post(
        "/segments/new",
        data={"csrf_token": csrf, "name": " ", "kind": "dynamic", "rules": json.dumps(rules)},
    )
    assert nameless.status == 422
    assert 'id="error-name"' in await nameless.text()


async def test_a_static_list_shows_its_members_and_removes_the_chosen(
    client: Client, sessions: SessionFactory
) -> None:
    people = await _people(sessions)
    csrf = await log_in(client, "marketer")
    saved = await client.post(
        "/segments/new",
        data={"csrf_token": csrf, "name": "Hand-picked", "kind": "static", "rules": ""},
        allow_redirects=False,
    )
    assert saved.status == 303
    location = saved.headers["Location"]
    segment_id = int(location.rsplit("/", 1)[1])
    added = await client.post(
        f"/api/v1/segments/{segment_id}/members",
        json={"contact_ids": list(people.values())},
        headers={"X-CSRF-Token": csrf},
    )
    assert added.status == 200
    text = await (await client.get(location, headers=HTML)).text()
    assert 'id="builder"' not in text
    for contact_id in people.values():
        assert f'name="contact_id" value="{contact_id}"' in text
    removed = await client.post(
        f"/segments/{segment_id}/members/remove",
        data=[
            ("csrf_token", csrf),
            ("contact_id", str(people["ann"])),
            ("contact_id", str(people["vera"])),
        ],
        allow_redirects=False,
    )
    assert removed.status == 303
    left = await client.get(f"/api/v1/segments/{segment_id}/members")
    assert [m["id"] for m in (await left.json())["sample"]] == [people["boris"]]
    nobody = await client.post(
        f"/segments/{segment_id}/members/remove", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert nobody.status == 303  # back to the list with "choose at least one person"


async def test_a_segment_is_renamed_and_deleted_from_its_page(client: Client) -> None:
    csrf = await log_in(client, "marketer")
    rules = json.dumps({"all": [{"field": "tag", "op": "has", "value": "vip"}]})
    saved = await client.post(
        "/segments/new",
        data={"csrf_token": csrf, "name": "VIPs", "kind": "dynamic", "rules": rules},
        allow_redirects=False,
    )
    location = saved.headers["Location"]
    renamed = await client.post(
        location,
        data={"csrf_token": csrf, "name": "Our VIPs", "description": "", "rules": rules},
        allow_redirects=False,
    )
    assert renamed.status == 303
    assert "Our VIPs" in await (await client.get("/segments", headers=HTML)).text()
    deleted = await client.post(
        f"{location}/delete", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert deleted.status == 303
    assert "Our VIPs" not in await (await client.get("/segments", headers=HTML)).text()
    assert (await client.get(location, headers=HTML)).status == 404
