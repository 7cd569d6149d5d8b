"""What the browser tests keep doing: log in, take screenshots, play calls, wait for the log.

A module beside the conftest (pytest puts this folder on ``sys.path``), so
that tests import plain functions instead of fixtures that return functions.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from playwright.async_api import Page, expect

from ami_harness import settle
from ami_replay import AmiReplayServer
from app_fixtures import PASSWORD
from commhub.bootstrap import Hub
from commhub_asterisk.recordings import Recording, load_recording, split_blocks

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
"""Where a person looks at the main screens after a run; ``artifacts/`` is git-ignored."""
AMI = ROOT.parent / "shared" / "fixtures" / "ami"
"""Streams recorded from a real Asterisk, used as they are."""


def recording(name: str) -> Recording:
    return load_recording(AMI, name)


@dataclass(eq=False)
class Console:
    """The hub serving the console on a loopback port, with its PBX replaying calls."""

    url: str
    app: web.Application
    hub: Hub
    pbx: AmiReplayServer
    ivan: int
    """The contact id of Ivan Petrov, +7 916 123-45-67: the caller of most recordings."""
    playing: list[asyncio.Task[None]] = field(default_factory=list)
    """Calls still being played; the fixture stops them when a test ends early."""


@dataclass(eq=False)
class PacedCall:
    """A recorded call being played at its recorded pace; ``sent`` grows as it goes."""

    task: asyncio.Task[None]
    sent: list[bytes] = field(default_factory=list)

    def answered(self) -> bool:
        """Whether the PBX has already bridged the call (the operator picked up)."""
        return any(b"Event: BridgeEnter\r\n" in chunk for chunk in self.sent)

    async def finish(self) -> None:
        await asyncio.wait_for(self.task, 30)


def play_paced(console: Console, name: str) -> PacedCall:
    """Send a recording to the hub's AMI link at the pace Asterisk sent it."""
    pbx = console.pbx
    sent: list[bytes] = []

    async def play() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for at, data in recording(name).paced_body():
            delay = started + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await pbx.send(data)
            sent.append(data)

    task = asyncio.create_task(play())
    console.playing.append(task)
    return PacedCall(task=task, sent=sent)


async def play_at_once(console: Console, *names: str) -> None:
    """Send whole recordings one after the other, each call logged before the next."""
    for count, name in enumerate(names, start=1):
        await console.pbx.send(b"".join(split_blocks(recording(name).body)))
        await settle(console.hub, calls=count)


async def log_in(page: Page, username: str) -> None:
    """Log in through the form as a person does, and land on the home page."""
    await page.goto("/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action='/login'] button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/$"))
    await expect(page.locator("h1")).to_contain_text("Hello")


async def live_feed_open(page: Page) -> None:
    """Wait until the page's WebSocket to the live feed is connected."""
    await expect(page.locator("#feed-state")).to_have_attribute("data-state", "open")


async def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as ``artifacts/screenshots/<name>.png`` for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0, f"empty screenshot {path}"
    return path
