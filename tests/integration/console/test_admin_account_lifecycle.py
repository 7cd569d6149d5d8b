"""The users page ends a user's sessions and tokens as the API does (see the API's tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from app_fixtures import PASSWORD, Account, log_in
from commhub.domain.roles import Role

Client = TestClient[Any, Any]
HTML = {"Accept": "text/html"}


@asynccontextmanager
async def _browser(client: Client, username: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A second browser with its own cookies, logged in as ``username``."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=client.make_url(""), cookie_jar=jar) as browser:
        credentials = {"username": username, "password": PASSWORD}
        async with browser.post("/api/v1/auth/login", json=credentials) as response:
            assert response.status == 200
        yield browser


async def _page_status(browser: aiohttp.ClientSession | Client, path: str) -> int:
    """The page's status as a browser sees it first (303 to the login when logged out)."""
    async with browser.get(path, headers=HTML, allow_redirects=False) as response:
        return response.status


async def _user(client: Client, admin: dict[str, str], username: str) -> dict[str, Any]:
    listed = await (await client.get("/api/v1/users", headers=admin)).json()
    return dict(next(u for u in listed["items"] if u["username"] == username))


async def _save(client: Client, csrf: str, user: dict[str, Any], **fields: str) -> None:
    form = {
        "csrf_token": csrf,
        "display_name": user["display_name"],
        "role": user["role"],
        "extension": user["extension"] or "",
        "active": "1" if user["active"] else "",
        **fields,
    }
    saved = await client.post(f"/admin/users/{user['id']}", data=form)
    assert saved.status == 200, await saved.text()
    assert "saved" in await saved.text()


async def test_deactivating_from_the_page_ends_the_users_session_and_token_for_good(
    client: Client, admin: dict[str, str], accounts: dict[Role, Account]
) -> None:
    token = accounts[Role.OPERATOR].auth
    csrf = await log_in(client, "admin")
    operator = await _user(client, admin, "operator")
    async with _browser(client, "operator") as browser:
        assert await _page_status(browser, "/") == 200
        await _save(client, csrf, operator, active="")
        await _save(client, csrf, {**operator, "active": False}, active="1")
        assert (await _user(client, admin, "operator"))["active"] is True
        assert await _page_status(browser, "/") == 303
        assert (await client.get("/api/v1/auth/me", headers=token)).status == 401
    assert await _page_status(client, "/admin/users") == 200


async def test_a_password_reset_from_the_page_ends_the_users_sessions_not_the_admins(
    client: Client, admin: dict[str, str], accounts: dict[Role, Account]
) -> None:
    csrf = await log_in(client, "admin")
    manager = await _user(client, admin, "manager")
    me = await _user(client, admin, "admin")
    async with _browser(client, "manager") as browser:
        await _save(client, csrf, manager, password="reset from the page")
        assert await _page_status(browser, "/") == 303
        manager_token = accounts[Role.MANAGER].auth
        assert (await client.get("/api/v1/auth/me", headers=manager_token)).status == 401
    await _save(client, csrf, me, password="the admin's own new one")
    assert await _page_status(client, "/admin/users") == 200


async def test_a_manager_demoted_from_the_page_loses_the_dashboard_on_the_next_click(
    client: Client, admin: dict[str, str]
) -> None:
    csrf = await log_in(client, "admin")
    manager = await _user(client, admin, "manager")
    async with _browser(client, "manager") as browser:
        assert await _page_status(browser, "/dashboard") == 200
        await _save(client, csrf, manager, role="operator")
        assert await _page_status(browser, "/dashboard") == 403
        assert await _page_status(browser, "/") == 200
