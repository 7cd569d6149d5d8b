"""Each user's profile: the console's language and time zone, and their own password."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient
from sqlalchemy import update

from app_fixtures import PASSWORD, log_in
from commhub.models import User
from commhub.store.engine import SessionFactory
from commhub.web.ui.formatting import Formats

Client = TestClient[Any, Any]
NEW_PASSWORD = "a brand new passphrase"


async def _save(client: Client, csrf: str, **fields: str) -> Any:
    return await client.post(
        "/profile", data={"csrf_token": csrf, "action": "preferences", **fields}
    )


async def _me(client: Client) -> dict[str, Any]:
    return dict((await (await client.get("/api/v1/auth/me")).json())["user"])


async def test_choosing_russian_serves_the_next_page_in_russian(client: Client) -> None:
    csrf = await log_in(client, "operator")
    assert '<html lang="en">' in await (await client.get("/")).text()
    saved = await _save(client, csrf, locale="ru", time_zone="")
    assert saved.status == 200
    assert '<html lang="ru">' in await saved.text()
    assert '<html lang="ru">' in await (await client.get("/")).text()
    assert (await _me(client))["locale"] == "ru"
    await _save(client, csrf, locale="", time_zone="")
    assert '<html lang="en">' in await (await client.get("/")).text()


async def test_a_time_zone_changes_how_times_are_shown(
    client: Client, sessions: SessionFactory
) -> None:
    created = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    async with sessions() as session:
        await session.execute(
            update(User).where(User.username == "operator").values(created_at=created)
        )
        await session.commit()
    in_utc = Formats(language="en", zone=ZoneInfo("UTC"), region="RU").datetime(created)
    in_tokyo = Formats(language="en", zone=ZoneInfo("Asia/Tokyo"), region="RU").datetime(created)
    assert in_utc != in_tokyo
    csrf = await log_in(client, "admin")
    before = await (await client.get("/admin/users")).text()
    assert in_utc in before and in_tokyo not in before
    saved = await _save(client, csrf, locale="", time_zone="Asia/Tokyo")
    assert saved.status == 200
    assert "Your language and time zone are saved." in await saved.text()
    after = await (await client.get("/admin/users")).text()
    assert in_tokyo in after
    assert (await _me(client))["time_zone"] == "Asia/Tokyo"


async def test_an_unknown_time_zone_is_refused_and_not_stored(client: Client) -> None:
    csrf = await log_in(client, "manager")
    refused = await _save(client, csrf, locale="ru", time_zone="Mars/Olympus_Mons")
    assert refused.status == 422
    assert "unknown time zone 'Mars/Olympus_Mons'" in html.unescape(await refused.text())
    bad_language = await _save(client, csrf, locale="tlh", time_zone="")
    assert bad_language.status == 422
    me = await _me(client)
    assert (me["locale"], me["time_zone"]) == (None, None)


async def test_changing_the_password_keeps_this_session_and_retires_the_old_one(
    client: Client,
) -> None:
    csrf = await log_in(client, "operator")
    change = {"csrf_token": csrf, "action": "password"}
    wrong = await client.post(
        "/profile",
        data={**change, "current_password": "guess", **_new(NEW_PASSWORD)},
    )
    assert wrong.status == 422
    assert "the current password is wrong" in await wrong.text()
    differ = await client.post(
        "/profile",
        data={
            **change,
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "repeat_password": "something else",
        },
    )
    assert differ.status == 422
    done = await client.post(
        "/profile", data={**change, "current_password": PASSWORD, **_new(NEW_PASSWORD)}
    )
    assert done.status == 200
    assert "Your password is changed" in await done.text()
    assert (await client.get("/profile")).status == 200
    old = {"username": "operator", "password": PASSWORD}
    assert (await client.post("/api/v1/auth/login", json=old)).status == 401
    new = {"username": "operator", "password": NEW_PASSWORD}
    assert (await client.post("/api/v1/auth/login", json=new)).status == 200


def _new(password: str) -> dict[str, str]:
    return {"new_password": password, "repeat_password": password}


async def test_an_admin_sets_language_and_zone_through_the_api(
    client: Client, admin: dict[str, str]
) -> None:
    listed = await (await client.get("/api/v1/users", headers=admin)).json()
    operator = next(u for u in listed["items"] if u["username"] == "operator")
    assert (operator["locale"], operator["time_zone"]) == (None, None)
    path = f"/api/v1/users/{operator['id']}"
    refused = await client.patch(path, json={"time_zone": "Nowhere/Land"}, headers=admin)
    assert refused.status == 422
    assert (await refused.json())["errors"][0]["field"] == "time_zone"
    refused = await client.patch(path, json={"locale": "de"}, headers=admin)
    assert (await refused.json())["errors"][0]["field"] == "locale"
    saved = await client.patch(
        path, json={"locale": "ru", "time_zone": "Europe/Moscow"}, headers=admin
    )
    assert saved.status == 200
    body = await saved.json()
    assert (body["locale"], body["time_zone"]) == ("ru", "Europe/Moscow")
    cleared = await (await client.patch(path, json={"time_zone": ""}, headers=admin)).json()
    assert (cleared["locale"], cleared["time_zone"]) == ("ru", None)
