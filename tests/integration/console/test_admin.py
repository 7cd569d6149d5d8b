"""The admin pages: users, roles and extensions; the channels' health."""

from __future__ import annotations

import asyncio
import html
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from app_fixtures import PASSWORD, log_in
from commhub.bootstrap import Hub, open_hub
from commhub.config import Settings
from commhub.domain.roles import Role
from commhub.web.app import create_app

Client = TestClient[Any, Any]
HTML = {"Accept": "text/html"}


async def _users(client: Client, admin: dict[str, str]) -> dict[str, dict[str, Any]]:
    listed = await (await client.get("/api/v1/users", headers=admin)).json()
    return {user["username"]: user for user in listed["items"]}


async def _login_status(client: Client, username: str, password: str = PASSWORD) -> int:
    form = await (await client.get("/login")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    done = await client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
        allow_redirects=False,
    )
    return done.status


async def test_admin_adds_a_user_who_can_then_log_in(client: Client) -> None:
    csrf = await log_in(client, "admin")
    added = await client.post(
        "/admin/users",
        data={
            "csrf_token": csrf,
            "username": "olga",
            "display_name": "Olga Smirnova",
            "role": "operator",
            "extension": "205",
            "password": PASSWORD,
        },
    )
    assert added.status == 200
    text = await added.text()
    assert "User olga added." in text
    assert 'data-user="olga"' in text and "Olga Smirnova" in text and "205" in text
    await log_in(client, "olga")
    home = await client.get("/", headers=HTML)
    assert home.status == 200
    assert "Olga Smirnova" in await home.text()
    denied = await client.get("/admin/users", headers=HTML)
    assert denied.status == 403


async def test_admin_changes_a_users_role_and_extension(
    client: Client, admin: dict[str, str]
) -> None:
    csrf = await log_in(client, "admin")
    operator = (await _users(client, admin))["operator"]
    form = await client.get(f"/admin/users/{operator['id']}")
    assert form.status == 200
    assert 'value="201"' in await form.text()
    saved = await client.post(
        f"/admin/users/{operator['id']}",
        data={
            "csrf_token": csrf,
            "display_name": "Anna Operator",
            "role": "manager",
            "extension": "210",
            "active": "1",
        },
    )
    assert saved.status == 200
    assert "User operator saved." in await saved.text()
    changed = (await _users(client, admin))["operator"]
    assert (changed["role"], changed["extension"], changed["display_name"]) == (
        "manager",
        "210",
        "Anna Operator",
    )
    assert changed["active"] is True


async def test_a_taken_extension_is_refused_and_nothing_changes(
    client: Client, admin: dict[str, str]
) -> None:
    csrf = await log_in(client, "admin")
    operator = (await _users(client, admin))["operator"]
    refused = await client.post(
        f"/admin/users/{operator['id']}",
        data={
            "csrf_token": csrf,
            "display_name": "Renamed",
            "role": "operator",
            "extension": "202",
            "active": "1",
        },
    )
    assert refused.status == 422
    text = html.unescape(await refused.text())
    assert "extension 202 belongs to user" in text
    assert 'value="Renamed"' in text and 'value="202"' in text
    unchanged = (await _users(client, admin))["operator"]
    assert (unchanged["extension"], unchanged["display_name"]) == ("201", "operator")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"username": "olga", "extension": "201"}, "extension 201 belongs to user"),
        ({"username": "olga", "password": "short"}, "use at least 10 characters"),
        ({"username": "manager"}, "username 'manager' is taken"),
        ({"username": "olga", "role": "overlord"}, "role:"),
    ],
    ids=["taken-extension", "short-password", "duplicate-username", "unknown-role"],
)
async def test_a_refused_new_user_comes_back_on_the_form_with_the_values_kept(
    client: Client, admin: dict[str, str], fields: dict[str, str], reason: str
) -> None:
    csrf = await log_in(client, "admin")
    before = await _users(client, admin)
    data = {"csrf_token": csrf, "display_name": "Olga S", "role": "operator", "password": PASSWORD}
    refused = await client.post("/admin/users", data={**data, **fields})
    assert refused.status == 422
    text = html.unescape(await refused.text())
    assert reason in text
    assert f'value="{fields["username"]}"' in text and 'value="Olga S"' in text
    assert PASSWORD not in text
    assert await _users(client, admin) == before


async def test_a_deactivated_user_can_no_longer_log_in(
    client: Client, admin: dict[str, str]
) -> None:
    assert await _login_status(client, "operator") == 303
    csrf = await log_in(client, "admin")
    operator = (await _users(client, admin))["operator"]
    saved = await client.post(
        f"/admin/users/{operator['id']}",
        data={"csrf_token": csrf, "display_name": "operator", "role": "operator", "extension": ""},
    )
    assert saved.status == 200
    listed = await (await client.get("/admin/users")).text()
    assert "deactivated" in listed
    assert (await _users(client, admin))["operator"]["extension"] is None
    assert await _login_status(client, "operator") == 401


async def test_the_last_active_admin_cannot_be_demoted_or_deactivated(
    client: Client, admin: dict[str, str]
) -> None:
    me = (await _users(client, admin))["admin"]
    demote = await client.patch(
        f"/api/v1/users/{me['id']}", json={"role": "manager"}, headers=admin
    )
    assert demote.status == 409
    assert (await demote.json())["errors"][0]["field"] == "role"
    off = await client.patch(f"/api/v1/users/{me['id']}", json={"active": False}, headers=admin)
    assert off.status == 409
    assert "last active admin" in (await off.json())["detail"]
    manager = (await _users(client, admin))["manager"]
    promoted = await client.patch(
        f"/api/v1/users/{manager['id']}", json={"role": "admin"}, headers=admin
    )
    assert promoted.status == 200
    demote = await client.patch(
        f"/api/v1/users/{me['id']}", json={"role": "manager"}, headers=admin
    )
    assert demote.status == 200


async def test_an_admins_own_form_cannot_lock_them_out(
    client: Client, admin: dict[str, str]
) -> None:
    csrf = await log_in(client, "admin")
    me = (await _users(client, admin))["admin"]
    form = await (await client.get(f"/admin/users/{me['id']}")).text()
    assert 'name="active"' not in form and 'name="role"' not in form
    saved = await client.post(
        f"/admin/users/{me['id']}",
        data={"csrf_token": csrf, "display_name": "The Admin", "role": "operator", "extension": ""},
    )
    assert saved.status == 200
    still = (await _users(client, admin))["admin"]
    assert (still["role"], still["active"], still["display_name"]) == ("admin", True, "The Admin")


@pytest.mark.parametrize("username", ["manager", "operator"])
async def test_only_admins_manage_users(client: Client, username: str) -> None:
    await log_in(client, username)
    for path in ("/admin/users", "/admin/users/1"):
        denied = await client.get(path, headers=HTML)
        assert denied.status == 403
        assert denied.content_type == "text/html"


async def test_the_channels_page_without_channels_says_where_to_configure_them(
    client: Client,
) -> None:
    await log_in(client, "manager")
    shown = await client.get("/admin/channels")
    assert shown.status == 200
    text = await shown.text()
    assert "No channels are configured" in text and "COMMHUB_CHANNELS_FILE" in text
    await log_in(client, "operator")
    assert (await client.get("/admin/channels", headers=HTML)).status == 403


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_pbx_that_cannot_be_reached_shows_as_not_connected_with_its_error(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    accounts: dict[Role, Any],
    tmp_path: Path,
) -> None:
    channels = tmp_path / "channels.toml"
    channels.write_text(
        "[[channels]]\n"
        'adapter = "asterisk"\n'
        'name = "main"\n'
        'host = "127.0.0.1"\n'
        f"port = {_closed_port()}\n"
        'username = "commhub"\n'
        'secret = "not-shown-anywhere"\n'
        "reconnect_max_s = 1.0\n",
        encoding="utf-8",
    )
    configured = settings.model_copy(update={"channels_file": channels})

    async def opener() -> Hub:
        return await open_hub(configured)

    client = await aiohttp_client(create_app(opener))
    await log_in(client, "admin")

    async def failing() -> str:
        while True:
            text = await (await client.get("/admin/channels")).text()
            if "channels-in-error" in text:
                return text
            await asyncio.sleep(0.05)

    text = await asyncio.wait_for(failing(), 10)
    row = text[text.index('data-channel="main"') :]
    row = row[: row.index("</tr>")]
    assert "not connected" in row
    assert "ConnectionRefusedError" in row  # the adapter's last error, as it reports it
    assert "not-shown-anywhere" not in text
    assert "Listening process" in text
