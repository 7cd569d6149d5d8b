"""Who may call what: every route × every role, sessions, CSRF and tokens."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from commhub.domain.roles import Role

Client = TestClient[Any, Any]
Account = Any
PASSWORD = "correct horse battery"  # the accounts fixture's password

ALL = frozenset(Role)
WRITERS = frozenset({Role.OPERATOR, Role.MANAGER, Role.ADMIN})
LEADS = frozenset({Role.MANAGER, Role.ADMIN})
ADMIN = frozenset({Role.ADMIN})
MARKETING = frozenset({Role.MARKETER, Role.ADMIN})
RESULTS = frozenset({Role.MARKETER, Role.MANAGER, Role.ADMIN})
SEGMENTS = RESULTS
PUBLIC = None

EXPECTED: dict[tuple[str, str], frozenset[Role] | None] = {
    ("GET", "/api/v1/health"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): ALL,
    ("GET", "/api/v1/auth/me"): ALL,
    ("POST", "/api/v1/auth/password"): ALL,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("PATCH", "/api/v1/users/{id}"): ADMIN,
    ("GET", "/api/v1/tokens"): LEADS,
    ("POST", "/api/v1/tokens"): LEADS,
    ("DELETE", "/api/v1/tokens/{id}"): LEADS,
    ("GET", "/api/v1/contacts"): ALL,
    ("POST", "/api/v1/contacts"): WRITERS,
    ("GET", "/api/v1/contacts/{id}"): ALL,
    ("PATCH", "/api/v1/contacts/{id}"): WRITERS,
    ("GET", "/api/v1/contacts/{id}/timeline"): ALL,
    ("POST", "/api/v1/contacts/{id}/merge"): LEADS,
    ("GET", "/api/v1/contacts/{id}/consents"): ALL,
    ("GET", "/api/v1/identify"): ALL,
    ("GET", "/api/v1/interactions"): frozenset({Role.MARKETER, Role.MANAGER, Role.ADMIN}),
    ("POST", "/api/v1/interactions"): WRITERS,
    ("POST", "/api/v1/imports"): LEADS,
    ("GET", "/api/v1/imports/{id}"): LEADS,
    ("GET", "/api/v1/imports/{id}/errors"): LEADS,
    ("GET", "/api/v1/imports"): LEADS,
    ("POST", "/api/v1/imports/{id}/cancel"): LEADS,
    ("POST", "/api/v1/imports/{id}/resume"): LEADS,
    ("POST", "/api/v1/imports/{id}/restart"): LEADS,
    ("POST", "/api/v1/calls"): WRITERS,
    ("GET", "/api/v1/calls/live"): LEADS,
    ("GET", "/api/v1/calls/missed"): WRITERS,
    ("POST", "/api/v1/calls/missed/{id}/dismiss"): WRITERS,
    ("GET", "/api/v1/channels"): LEADS,
    ("POST", "/api/v1/emails"): WRITERS,
    ("POST", "/api/v1/sms"): WRITERS,
    ("POST", "/api/v1/sms/preview"): WRITERS,
    ("GET", "/api/v1/sms/{id}"): ALL,
    ("POST", "/hooks/{channel}/{path}"): PUBLIC,
    ("GET", "/hooks/{channel}/{path}"): PUBLIC,
    ("GET", "/api/v1/emails/unmatched"): WRITERS,
    ("GET", "/api/v1/emails/failures"): ADMIN,
    ("GET", "/api/v1/emails/failures/{id}/raw"): ADMIN,
    ("POST", "/api/v1/emails/failures/{id}/resolve"): ADMIN,
    ("GET", "/api/v1/emails/{id}"): ALL,
    ("GET", "/api/v1/emails/{id}/raw"): ALL,
    ("GET", "/api/v1/emails/{id}/attachments/{index}"): ALL,
    ("POST", "/api/v1/emails/{id}/assign"): WRITERS,
    ("POST", "/api/v1/emails/{id}/dismiss"): WRITERS,
    ("GET", "/api/v1/suppressions"): LEADS,
    ("DELETE", "/api/v1/suppressions/{id}"): LEADS,
    ("GET", "/api/v1/outbox"): LEADS,
    ("POST", "/api/v1/outbox/{id}/resend"): LEADS,
    ("POST", "/api/v1/outbox/{id}/dismiss"): LEADS,
    ("GET", "/api/v1/live"): ALL,
    ("GET", "/static/{name}"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/u/{token}"): PUBLIC,
    ("POST", "/u/{token}"): PUBLIC,
    ("POST", "/logout"): ALL,
    ("GET", "/api/v1/deals"): WRITERS,
    ("POST", "/api/v1/deals"): WRITERS,
    ("POST", "/api/v1/deals/bulk"): WRITERS,
    ("GET", "/api/v1/deals/board"): WRITERS,
    ("GET", "/api/v1/stages/{id}/deals"): WRITERS,
    ("GET", "/api/v1/deals/{id}"): WRITERS,
    ("PATCH", "/api/v1/deals/{id}"): WRITERS,
    ("POST", "/api/v1/deals/{id}/move"): WRITERS,
    ("POST", "/api/v1/deals/{id}/invoices"): WRITERS,
    ("POST", "/api/v1/invoices/{id}/payments"): WRITERS,
    ("GET", "/api/v1/receivables"): WRITERS,
    ("GET", "/api/v1/campaigns"): RESULTS,
    ("POST", "/api/v1/campaigns"): MARKETING,
    ("GET", "/api/v1/campaigns/{id}"): RESULTS,
    ("PATCH", "/api/v1/campaigns/{id}"): MARKETING,
    ("POST", "/api/v1/campaigns/{id}/start"): MARKETING,
    ("POST", "/api/v1/campaigns/{id}/pause"): MARKETING,
    ("POST", "/api/v1/campaigns/{id}/resume"): MARKETING,
    ("POST", "/api/v1/campaigns/{id}/cancel"): MARKETING,
    ("GET", "/api/v1/campaigns/{id}/recipients"): RESULTS,
    ("GET", "/api/v1/segments"): SEGMENTS,
    ("POST", "/api/v1/segments"): SEGMENTS,
    ("POST", "/api/v1/segments/preview"): SEGMENTS,
    ("POST", "/api/v1/segments/from-import"): SEGMENTS,
    ("GET", "/api/v1/segments/{id}"): SEGMENTS,
    ("PATCH", "/api/v1/segments/{id}"): SEGMENTS,
    ("DELETE", "/api/v1/segments/{id}"): SEGMENTS,
    ("GET", "/api/v1/segments/{id}/members"): SEGMENTS,
    ("POST", "/api/v1/segments/{id}/members"): SEGMENTS,
    ("DELETE", "/api/v1/segments/{id}/members"): SEGMENTS,
    ("GET", "/api/v1/templates"): MARKETING,
    ("POST", "/api/v1/templates"): MARKETING,
    ("POST", "/api/v1/templates/preview"): MARKETING,
    ("POST", "/api/v1/templates/test"): MARKETING,
    ("POST", "/api/v1/templates/missing"): MARKETING,
    ("GET", "/api/v1/templates/stock"): MARKETING,
    ("POST", "/api/v1/templates/copy"): MARKETING,
    ("GET", "/api/v1/templates/{id}"): MARKETING,
    ("PATCH", "/api/v1/templates/{id}"): MARKETING,
    ("DELETE", "/api/v1/templates/{id}"): MARKETING,
    ("GET", "/api/v1/pipelines"): WRITERS,
    ("POST", "/api/v1/pipelines"): ADMIN,
    ("PATCH", "/api/v1/pipelines/{id}"): ADMIN,
    ("POST", "/api/v1/pipelines/{id}/stages"): ADMIN,
    ("PUT", "/api/v1/pipelines/{id}/order"): ADMIN,
    ("PATCH", "/api/v1/stages/{id}"): ADMIN,
    ("DELETE", "/api/v1/stages/{id}"): ADMIN,
    ("GET", "/api/v1/reports/funnel"): LEADS,
    ("GET", "/"): ALL,
    ("POST", "/calls"): WRITERS,
    ("POST", "/missed/{id}/dismiss"): WRITERS,
    ("POST", "/follow-ups/{id}/done"): WRITERS,
    ("GET", "/dashboard"): LEADS,
    ("GET", "/live"): LEADS,
    ("GET", "/log"): frozenset({Role.MARKETER, Role.MANAGER, Role.ADMIN}),
    ("GET", "/log/export.csv"): LEADS,
    ("GET", "/log/export.xlsx"): LEADS,
    ("GET", "/admin/users"): ADMIN,
    ("POST", "/admin/users"): ADMIN,
    ("GET", "/admin/users/{id}"): ADMIN,
    ("POST", "/admin/users/{id}"): ADMIN,
    ("GET", "/admin/channels"): LEADS,
    ("GET", "/admin/outbox"): LEADS,
    ("POST", "/admin/outbox/{id}/resend"): LEADS,
    ("POST", "/admin/outbox/{id}/dismiss"): LEADS,
    ("GET", "/imports"): LEADS,
    ("POST", "/imports/{id}/cancel"): LEADS,
    ("POST", "/imports/{id}/resume"): LEADS,
    ("POST", "/imports/{id}/restart"): LEADS,
    ("GET", "/profile"): ALL,
    ("POST", "/profile"): ALL,
    ("GET", "/contacts"): ALL,
    ("POST", "/contacts/new"): WRITERS,
    ("GET", "/contacts/{id}"): ALL,
    ("GET", "/contacts/{id}/timeline"): ALL,
    ("POST", "/contacts/{id}/edit"): WRITERS,
    ("POST", "/contacts/{id}/notes"): WRITERS,
    ("POST", "/contacts/{id}/sms"): WRITERS,
    ("POST", "/contacts/{id}/email"): WRITERS,
    ("GET", "/emails/{id}/html"): ALL,
    ("GET", "/emails/threads/{id}"): ALL,
    # Deals: the funnel report and its downloads.
    ("GET", "/reports/funnel"): LEADS,
    ("GET", "/reports/funnel.csv"): LEADS,
    ("GET", "/reports/funnel.xlsx"): LEADS,
    ("GET", "/receivables"): WRITERS,
    ("GET", "/reports/emails-waiting/{id}"): LEADS,
    # Deals, part E: the admin's pipelines page.
    ("GET", "/admin/pipelines"): ADMIN,
    ("POST", "/admin/pipelines"): ADMIN,
    ("POST", "/admin/pipelines/{id}"): ADMIN,
    ("POST", "/admin/pipelines/{id}/default"): ADMIN,
    ("POST", "/admin/pipelines/{id}/stages"): ADMIN,
    ("POST", "/admin/pipelines/{id}/order"): ADMIN,
    ("POST", "/admin/stages/{id}"): ADMIN,
    ("POST", "/admin/stages/{id}/remove"): ADMIN,
    # Deals in the console (helper B, issue 18).
    ("GET", "/deals"): WRITERS,
    ("POST", "/deals/mass"): WRITERS,
    ("GET", "/deals/board"): WRITERS,
    ("GET", "/deals/board/more"): WRITERS,
    ("GET", "/deals/new"): WRITERS,
    ("POST", "/deals/new"): WRITERS,
    ("GET", "/deals/{id}"): WRITERS,
    ("POST", "/deals/{id}"): WRITERS,
    ("POST", "/deals/{id}/stage"): WRITERS,
    ("POST", "/deals/{id}/invoices"): WRITERS,
    ("POST", "/deals/{id}/payments"): WRITERS,
    # Campaigns in the console: marketers run them, managers read the results.
    ("GET", "/campaigns"): RESULTS,
    ("GET", "/campaigns/new"): MARKETING,
    ("POST", "/campaigns/new"): MARKETING,
    ("GET", "/campaigns/{id}"): RESULTS,
    ("GET", "/campaigns/{id}/edit"): MARKETING,
    ("POST", "/campaigns/{id}/edit"): MARKETING,
    ("POST", "/campaigns/{id}/start"): MARKETING,
    ("POST", "/campaigns/{id}/pause"): MARKETING,
    ("POST", "/campaigns/{id}/resume"): MARKETING,
    ("POST", "/campaigns/{id}/cancel"): MARKETING,
    ("GET", "/campaigns/{id}/progress"): RESULTS,
    ("GET", "/campaigns/{id}/recipients.csv"): RESULTS,
    # Segments and templates in the console.
    ("GET", "/segments"): SEGMENTS,
    ("GET", "/segments/new"): SEGMENTS,
    ("POST", "/segments/new"): SEGMENTS,
    ("GET", "/segments/{id}"): SEGMENTS,
    ("POST", "/segments/{id}"): SEGMENTS,
    ("POST", "/segments/{id}/delete"): SEGMENTS,
    ("POST", "/segments/{id}/members/remove"): SEGMENTS,
    ("GET", "/templates"): MARKETING,
    ("POST", "/templates/copy"): MARKETING,
    ("GET", "/templates/new"): MARKETING,
    ("POST", "/templates/new"): MARKETING,
    ("POST", "/templates/preview-frame"): MARKETING,
    ("GET", "/templates/{id}"): MARKETING,
    ("POST", "/templates/{id}"): MARKETING,
    ("POST", "/templates/{id}/delete"): MARKETING,
}


def _routes(client: Client) -> set[tuple[str, str]]:
    found = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if route.method != "HEAD" and path:
            found.add((route.method, path))
    return found


def test_every_route_has_an_expected_access_rule(client: Client) -> None:
    assert _routes(client) == set(EXPECTED)


async def test_every_route_allows_exactly_the_expected_roles(
    client: Client, accounts: dict[Role, Account]
) -> None:
    for (method, template), allowed in sorted(EXPECTED.items()):
        path = re.sub(r"{\w+}", "999999", template)
        anonymous = await client.request(method, path, allow_redirects=False)
        if allowed is None:
            denied = anonymous.status == 403 and anonymous.content_type.endswith("problem+json")
            assert anonymous.status != 401 and not denied, (method, path)
            continue
        expected_anonymous = 401 if path.startswith("/api/") else 303
        assert anonymous.status == expected_anonymous, (method, path)
        for role, account in accounts.items():
            response = await client.request(
                method, path, headers=account.auth, allow_redirects=False
            )
            if role in allowed:
                assert response.status not in (401, 403), (method, path, role)
            else:
                assert response.status == 403, (method, path, role)
                # The API answers problem documents; console addresses answer pages.
                expected_type = (
                    "application/problem+json" if path.startswith("/api/") else "text/html"
                )
                assert response.content_type == expected_type, (method, path, role)


async def _login(client: Client, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status == 200, await response.text()
    cookie = response.cookies["commhub_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    return dict(await response.json())


async def test_cookie_session_needs_csrf_token_for_writes(client: Client) -> None:
    session = await _login(client, "operator")
    body = {"name": "Via browser", "phones": ["+79161234567"]}
    refused = await client.post("/api/v1/contacts", json=body)
    assert refused.status == 403
    assert "CSRF" in (await refused.json())["detail"]
    forged = await client.post("/api/v1/contacts", json=body, headers={"X-CSRF-Token": "x" * 43})
    assert forged.status == 403
    accepted = await client.post(
        "/api/v1/contacts", json=body, headers={"X-CSRF-Token": session["csrf_token"]}
    )
    assert accepted.status == 201
    me = await client.get("/api/v1/auth/me")
    assert (await me.json())["user"]["username"] == "operator"


async def test_logout_ends_the_session(client: Client) -> None:
    session = await _login(client, "manager")
    out = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": session["csrf_token"]})
    assert out.status == 204
    assert (await client.get("/api/v1/auth/me")).status == 401


@pytest.mark.parametrize(("username", "password"), [("operator", "wrong"), ("ghost", PASSWORD)])
async def test_bad_credentials_are_refused_alike(
    client: Client, username: str, password: str
) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status == 401
    assert (await response.json())["detail"] == "wrong username or password"
    assert "commhub_session" not in response.cookies


async def test_password_guessing_is_refused_after_ten_failures(client: Client) -> None:
    wrong = {"username": "admin", "password": "guess"}
    for _ in range(10):
        assert (await client.post("/api/v1/auth/login", json=wrong)).status == 401
    refused = await client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
    )
    assert refused.status == 429
    assert 800 < int(refused.headers["Retry-After"]) <= 900
    assert "try again in 15 min" in (await refused.json())["detail"]
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    assert token is not None
    form = await client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "csrf_token": token.group(1)},
        allow_redirects=False,
    )
    assert form.status == 429
    assert "Too many wrong passwords" in await form.text()
    await _login(client, "manager")


async def test_revoked_token_stops_working(client: Client, manager: dict[str, str]) -> None:
    issued = await client.post("/api/v1/tokens", json={"name": "crm sync"}, headers=manager)
    assert issued.status == 201
    token = await issued.json()
    assert token["token"].startswith(token["prefix"])
    auth = {"Authorization": f"Bearer {token['token']}"}
    assert (await client.get("/api/v1/auth/me", headers=auth)).status == 200
    listed = await (await client.get("/api/v1/tokens", headers=manager)).json()
    assert "token" not in listed["items"][-1]
    revoked = await client.delete(f"/api/v1/tokens/{token['id']}", headers=manager)
    assert revoked.status == 204
    assert (await client.get("/api/v1/auth/me", headers=auth)).status == 401
    nonsense = {"Authorization": "Bearer nope"}
    assert (await client.get("/api/v1/auth/me", headers=nonsense)).status == 401


async def test_deactivated_user_is_locked_out(
    client: Client, admin: dict[str, str], accounts: dict[Role, Account]
) -> None:
    users = await (await client.get("/api/v1/users", headers=admin)).json()
    operator_id = next(u["id"] for u in users["items"] if u["username"] == "operator")
    response = await client.patch(
        f"/api/v1/users/{operator_id}", json={"active": False}, headers=admin
    )
    assert response.status == 200
    assert (await client.get("/api/v1/auth/me", headers=accounts[Role.OPERATOR].auth)).status == 401


@asynccontextmanager
async def _other_browser(client: Client) -> AsyncIterator[aiohttp.ClientSession]:
    """A second browser on the same server: its own cookie jar."""
    base = client.make_url("")
    async with aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as b:
        yield b


async def _other_login(browser: aiohttp.ClientSession, username: str, password: str) -> int:
    credentials = {"username": username, "password": password}
    async with browser.post("/api/v1/auth/login", json=credentials) as response:
        return response.status


async def _whoami(browser: aiohttp.ClientSession) -> int:
    async with browser.get("/api/v1/auth/me") as response:
        return response.status


async def test_own_password_change_ends_other_sessions_only(client: Client) -> None:
    async with _other_browser(client) as elsewhere:
        assert await _other_login(elsewhere, "operator", PASSWORD) == 200
        await _change_own_password_from_here(client)
        assert await _whoami(elsewhere) == 401
        assert await _other_login(elsewhere, "operator", "a brand new passphrase") == 200


async def _change_own_password_from_here(client: Client) -> None:
    here = await _login(client, "operator")
    csrf = {"X-CSRF-Token": here["csrf_token"]}
    new = "a brand new passphrase"
    wrong = await client.post(
        "/api/v1/auth/password",
        json={"current_password": "guess", "new_password": new},
        headers=csrf,
    )
    assert wrong.status == 422
    assert (await wrong.json())["errors"][0]["field"] == "current_password"
    weak = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=csrf,
    )
    assert (await weak.json())["errors"][0]["field"] == "new_password"
    changed = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": new},
        headers=csrf,
    )
    assert changed.status == 204
    assert (await client.get("/api/v1/auth/me")).status == 200
    old = await client.post(
        "/api/v1/auth/login", json={"username": "operator", "password": PASSWORD}
    )
    assert old.status == 401


async def test_guessing_the_current_password_is_limited_like_a_login(client: Client) -> None:
    csrf = {"X-CSRF-Token": (await _login(client, "manager"))["csrf_token"]}
    guess = {"current_password": "guess", "new_password": "a brand new passphrase"}
    for _ in range(10):
        wrong = await client.post("/api/v1/auth/password", json=guess, headers=csrf)
        assert wrong.status == 422
    right = {**guess, "current_password": PASSWORD}
    refused = await client.post("/api/v1/auth/password", json=right, headers=csrf)
    assert refused.status == 429
    assert "Retry-After" in refused.headers


async def test_password_reset_by_admin_logs_the_user_out(
    client: Client, admin: dict[str, str]
) -> None:
    await _login(client, "marketer")
    users = await (await client.get("/api/v1/users", headers=admin)).json()
    marketer_id = next(u["id"] for u in users["items"] if u["username"] == "marketer")
    reset = await client.patch(
        f"/api/v1/users/{marketer_id}", json={"password": "reset by the admin"}, headers=admin
    )
    assert reset.status == 200
    assert (await client.get("/api/v1/auth/me")).status == 401


async def test_admin_creates_user_with_unique_extension(
    client: Client, admin: dict[str, str]
) -> None:
    body = {"username": "olga", "password": "long enough pw", "role": "operator"}
    created = await client.post("/api/v1/users", json={**body, "extension": "203"}, headers=admin)
    assert created.status == 201, await created.text()
    taken = await client.post(
        "/api/v1/users", json={**body, "username": "oleg", "extension": "201"}, headers=admin
    )
    assert taken.status == 409
    assert (await taken.json())["errors"][0]["field"] == "extension"
    weak = await client.post(
        "/api/v1/users", json={**body, "username": "pavel", "password": "short"}, headers=admin
    )
    assert weak.status == 422
    assert (await weak.json())["errors"][0]["field"] == "password"


async def test_login_form_guards_against_csrf_and_logs_in(client: Client) -> None:
    page = await client.get("/login")
    html = await page.text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    credentials = {"username": "operator", "password": PASSWORD}
    forged = await client.post(
        "/login", data={**credentials, "csrf_token": "forged"}, allow_redirects=False
    )
    assert forged.status == 403
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    assert token is not None
    done = await client.post(
        "/login", data={**credentials, "csrf_token": token.group(1)}, allow_redirects=False
    )
    assert done.status == 303
    home = await client.get("/")
    home_html = await home.text()
    assert "operator" in home_html
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home_html)
    assert csrf is not None
    no_token = await client.post("/logout", data={}, allow_redirects=False)
    assert no_token.status == 403
    out = await client.post("/logout", data={"csrf_token": csrf.group(1)}, allow_redirects=False)
    assert out.status == 303
    assert (await client.get("/", allow_redirects=False)).status == 303
