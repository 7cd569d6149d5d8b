"""Browser tests: Debian's Chromium, driven by Playwright, against the hub on a loopback port.

Playwright never downloads a browser here: it launches the Chromium that the
Debian package ``chromium`` installs (``executable_path``). Where it is not
installed the tests skip with a reason, unless ``COMMHUB_TEST_REQUIRE_CHROMIUM=1``
(set by ``.ci/run``, which installs the package) makes that a failure.

The hub runs as in production on SQLite — app, inbound path, the
Asterisk adapter loaded from a channels file — and its PBX is an
``AmiReplayServer`` playing calls recorded from a real Asterisk.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from browsing import Console
from playwright.async_api import Browser, Page, async_playwright

from ami_harness import pbx_options
from ami_replay import AmiReplayServer
from app_fixtures import Account, accounts
from commhub.bootstrap import Hub, open_hub
from commhub.config import Settings
from commhub.domain.contacts import ContactDraft
from commhub.domain.phones import parse_phone
from commhub.domain.roles import Role
from commhub.services import contacts
from commhub.store.engine import SessionFactory
from commhub.web.app import create_app

__all__ = ["accounts"]

CHROMIUM_REQUIRED_ENV = "COMMHUB_TEST_REQUIRE_CHROMIUM"
DEBIAN_CHROMIUM = "/usr/bin/chromium"
AMI_SECRET = "s3cret-never-logged"

# Chromium's sandbox needs a non-root user and user namespaces, which CI
# containers rarely give (it refuses to start as root without --no-sandbox);
# the browser only ever opens our own app on loopback. Docker's /dev/shm is
# 64 MB, too small for Chromium's shared memory: use /tmp instead.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium binary, or a skip (a failure in CI) saying how to get it."""
    path = shutil.which("chromium") or (
        DEBIAN_CHROMIUM if os.access(DEBIAN_CHROMIUM, os.X_OK) else None
    )
    if path is None:
        reason = "browser tests: install Debian's chromium package (apt-get install chromium)"
        if os.environ.get(CHROMIUM_REQUIRED_ENV) == "1":
            pytest.fail(f"{reason} ({CHROMIUM_REQUIRED_ENV}=1 makes it mandatory)")
        pytest.skip(reason)
    return path


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    """Headless Chromium on the test's event loop (Playwright's async API)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the store tests cover PostgreSQL; the browser sees the same pages."""
    return f"sqlite+aiosqlite:///{tmp_path / 'commhub.db'}"


@pytest.fixture
async def pbx() -> AsyncIterator[AmiReplayServer]:
    server = AmiReplayServer(username="commhub", secret=AMI_SECRET)
    await server.start()
    yield server
    await server.close()


def channels_file(path: Path, pbx: AmiReplayServer) -> Path:
    """A channels file with one Asterisk PBX, the replay server, as an admin writes it."""
    options = {"adapter": "asterisk", "name": "main", **pbx_options(pbx, secret=AMI_SECRET)}
    # JSON strings, numbers and arrays of them are valid TOML values.
    lines = ["[[channels]]", *(f"{key} = {json.dumps(value)}" for key, value in options.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def settings(database_url: str, tmp_path: Path, pbx: AmiReplayServer) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "var",
        phone_region="RU",
        redis_url="",
        channels_file=channels_file(tmp_path / "channels.toml", pbx),
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def ivan(sessions: SessionFactory, accounts: dict[Role, Account]) -> int:
    """The caller of most recordings: +7 916 123-45-67."""
    view = await contacts.create_contact(
        sessions,
        ContactDraft(
            name="Ivan Petrov",
            company="Acme",
            phones=(parse_phone("+79161234567", "RU"),),
            tags=("vip",),
        ),
        owner_id=None,
        source="test",
    )
    return view.id


ServerMaker = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def console(
    aiohttp_server: ServerMaker,
    settings: Settings,
    accounts: dict[Role, Account],
    ivan: int,
    pbx: AmiReplayServer,
) -> AsyncIterator[Console]:
    """The hub on 127.0.0.1 (a real TCP port a browser can open), its PBX link up."""
    opened: list[Hub] = []

    async def opener() -> Hub:
        hub = await open_hub(settings)
        opened.append(hub)
        return hub

    app: web.Application = create_app(opener)
    server = await aiohttp_server(app, host="127.0.0.1")
    await pbx.wait_logins(1)
    served = Console(
        url=str(server.make_url("")).rstrip("/"), app=app, hub=opened[0], pbx=pbx, ivan=ivan
    )
    yield served
    for call in served.playing:
        call.cancel()
    await asyncio.gather(*served.playing, return_exceptions=True)


@pytest.fixture
async def page(browser: Browser, console: Console) -> AsyncIterator[Page]:
    """A fresh browser profile (no cookies) in English, with relative URLs on the hub."""
    context = await browser.new_context(
        base_url=console.url,
        locale="en-US",
        viewport={"width": 1280, "height": 860},
        accept_downloads=True,
    )
    context.set_default_timeout(10_000)
    opened = await context.new_page()
    try:
        yield opened
    finally:
        await context.close()
