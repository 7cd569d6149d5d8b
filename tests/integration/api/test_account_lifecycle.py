"""What happens to a user's sessions and tokens when an admin changes the account.

Deactivation and a password reset end every credential the user holds, for
good; a role change ends nothing, because every request is authorised by the
role the user holds at that moment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from app_fixtures import PASSWORD, Account
from commhub.domain.roles import Role

Client = TestClient[Any, Any]


@asynccontextmanager
async def _browser(
    client: Client, username: str, password: str = PASSWORD
) -> AsyncIterator[tuple[aiohttp.ClientSession, dict[str, str]]]:
    """A browser of its own, logged in as ``username``; yields it and its CSRF header."""
    base = client.make_url("")
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=base, cookie_jar=jar) as browser:
        credentials = {"username": username, "password": password}
        async with browser.post("/api/v1/auth/login", json=credentials) as response:
            assert response.status == 200, await response.text()
            csrf = (await response.json())["csrf_token"]
        yield browser, {"X-CSRF-Token": csrf}


async def _status(browser: aiohttp.ClientSession, path: str = "/api/v1/auth/me") -> int:
    async with browser.get(path) as response:
        return response.status


async def _user_id(client: Client, admin: dict[str, str], username: str) -> int:
    listed = await (await client.get("/api/v1/users", headers=admin)).json()
    return int(next(u["id"] for u in listed["items"] if u["username"] == username))


async def test_deactivation_ends_sessions_and_tokens_and_reactivation_does_not_revive_them(
    client: Client, admin: dict[str, str], accounts: dict[Role, Account]
) -> None:
    token = accounts[Role.OPERATOR].auth
    operator_id = await _user_id(client, admin, "operator")
    async with _browser(client, "operator") as (browser, _csrf):
        assert await _status(browser) == 200
        off = await client.patch(
            f"/api/v1/users/{operator_id}", json={"active": False}, headers=admin
        )
        assert off.status == 200
        assert await _status(browser) == 401
        assert (await client.get("/api/v1/auth/me", headers=token)).status == 401
        on = await client.patch(
            f"/api/v1/users/{operator_id}", json={"active": True}, headers=admin
        )
        assert on.status == 200
        assert await _status(browser) == 401
        assert (await client.get("/api/v1/auth/me", headers=token)).status == 401
    async with _browser(client, "operator") as (browser, _csrf):
        assert await _status(browser) == 200


async def test_admin_password_reset_ends_the_users_sessions_and_tokens_not_the_admins(
    client: Client, accounts: dict[Role, Account]
) -> None:
    marketer_token = accounts[Role.MARKETER].auth
    async with (
        _browser(client, "marketer") as (marketer, _),
        _browser(client, "admin") as (admin_browser, admin_csrf),
    ):
        admin_id = await _user_id(client, accounts[Role.ADMIN].auth, "admin")
        marketer_id = await _user_id(client, accounts[Role.ADMIN].auth, "marketer")
        body = {"password": "reset by the admin"}
        async with admin_browser.patch(
            f"/api/v1/users/{marketer_id}", json=body, headers=admin_csrf
        ) as reset:
            assert reset.status == 200
        assert await _status(marketer) == 401
        assert (await client.get("/api/v1/auth/me", headers=marketer_token)).status == 401
        assert await _status(admin_browser) == 200
        assert (
            await client.get("/api/v1/auth/me", headers=accounts[Role.ADMIN].auth)
        ).status == 200
        # The admin resets their own password with their token: the token stays, their
        # browser session (another credential, perhaps a stolen one) ends.
        own = await client.patch(
            f"/api/v1/users/{admin_id}",
            json={"password": "a new admin passphrase"},
            headers=accounts[Role.ADMIN].auth,
        )
        assert own.status == 200
        assert await _status(admin_browser) == 401
        assert (
            await client.get("/api/v1/auth/me", headers=accounts[Role.ADMIN].auth)
        ).status == 200
    async with _browser(client, "marketer", "reset by the admin") as (marketer, _):
        assert await _status(marketer) == 200


async def test_a_demoted_manager_loses_manager_rights_at_once_and_stays_logged_in(
    client: Client, admin: dict[str, str], accounts: dict[Role, Account]
) -> None:
    token = accounts[Role.MANAGER].auth
    manager_id = await _user_id(client, admin, "manager")
    async with _browser(client, "manager") as (browser, csrf):
        assert await _status(browser, "/api/v1/tokens") == 200
        assert await _status(browser, "/dashboard") == 200
        assert (await client.get("/api/v1/tokens", headers=token)).status == 200
        demoted = await client.patch(
            f"/api/v1/users/{manager_id}", json={"role": "operator"}, headers=admin
        )
        assert demoted.status == 200
        assert await _status(browser, "/api/v1/tokens") == 403
        assert await _status(browser, "/dashboard") == 403
        assert (await client.get("/api/v1/tokens", headers=token)).status == 403
        async with browser.post("/api/v1/tokens", json={"name": "x"}, headers=csrf) as made:
            assert made.status == 403
        async with browser.get("/api/v1/auth/me") as me:
            assert (await me.json())["user"]["role"] == "operator"
        promoted = await client.patch(
            f"/api/v1/users/{manager_id}", json={"role": "manager"}, headers=admin
        )
        assert promoted.status == 200
        assert await _status(browser, "/api/v1/tokens") == 200
        assert (await client.get("/api/v1/tokens", headers=token)).status == 200


async def test_an_open_live_feed_closes_when_its_user_is_deactivated_or_may_no_longer_watch(
    client: Client, admin: dict[str, str], accounts: dict[Role, Account]
) -> None:
    """A session ended for good ends the feed it holds too, within a few seconds."""
    operator_id = await _user_id(client, admin, "operator")
    manager_id = await _user_id(client, admin, "manager")
    operator = accounts[Role.OPERATOR].auth
    manager = accounts[Role.MANAGER].auth
    async with (
        client.ws_connect("/api/v1/live", headers=operator) as mine,
        client.ws_connect("/api/v1/live?calls=all", headers=manager) as watching,
        client.ws_connect("/api/v1/live", headers=manager) as own_calls,
    ):
        for ws in (mine, watching, own_calls):
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
        off = await client.patch(
            f"/api/v1/users/{operator_id}", json={"active": False}, headers=admin
        )
        demoted = await client.patch(
            f"/api/v1/users/{manager_id}", json={"role": "operator"}, headers=admin
        )
        assert (off.status, demoted.status) == (200, 200)
        for ws in (mine, watching):
            closing = await ws.receive(timeout=15)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
        assert not own_calls.closed  # still a user of the hub: only watching all calls ended
