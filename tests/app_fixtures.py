"""An app on each database backend, with one user and one API token per role.

Imported by the conftest of each folder whose tests go through the app
(``integration/api``, ``integration/console``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from commhub.bootstrap import Hub, open_hub
from commhub.config import Settings
from commhub.domain.roles import Role
from commhub.services import users
from commhub.store.engine import SessionFactory
from commhub.web.app import create_app

PASSWORD = "correct horse battery"


@dataclass
class Account:
    username: str
    role: Role
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "var",
        phone_region="RU",
        redis_url="",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def accounts(engine: AsyncEngine, sessions: SessionFactory) -> dict[Role, Account]:
    """One active user per role, each with an API token."""
    made: dict[Role, Account] = {}
    async with sessions() as session:
        for role in Role:
            user = await users.create_user(
                session,
                username=role.value,
                password=PASSWORD,
                role=role,
                extension={"operator": "201", "manager": "202"}.get(role.value),
            )
            secret, _ = await users.issue_token(session, user.id, f"{role.value} tests")
            made[role] = Account(username=role.value, role=role, token=secret)
        await session.commit()
    return made


ClientMaker = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def client(
    aiohttp_client: ClientMaker, settings: Settings, accounts: dict[Role, Account]
) -> TestClient[Any, Any]:
    async def opener() -> Hub:
        return await open_hub(settings)

    return await aiohttp_client(create_app(opener))


@pytest.fixture
def admin(accounts: dict[Role, Account]) -> dict[str, str]:
    return accounts[Role.ADMIN].auth


@pytest.fixture
def manager(accounts: dict[Role, Account]) -> dict[str, str]:
    return accounts[Role.MANAGER].auth


@pytest.fixture
def operator(accounts: dict[Role, Account]) -> dict[str, str]:
    return accounts[Role.OPERATOR].auth


async def log_in(client: TestClient[Any, Any], username: str) -> str:
    """Log in through the form as a browser does; returns the session's CSRF token."""
    form = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await form.text())
    assert token is not None
    done = await client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        allow_redirects=False,
    )
    assert done.status == 303, await done.text()
    me = await client.get("/api/v1/auth/me")
    return str((await me.json())["csrf_token"])
