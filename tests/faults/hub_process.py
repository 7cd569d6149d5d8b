"""The one thing every fault rig needs: ``commhub serve`` processes that can be killed for real.

One process at a time on one folder and database: :meth:`HubProcess.start`
runs ``python -m commhub serve`` with the rig's environment and waits until
it answers HTTP, :meth:`HubProcess.kill` is SIGKILL (``kill -9``: nothing
flushed, nothing said), :meth:`HubProcess.stop` is Ctrl-C. Each process's
output is kept in ``hub-N.log`` for a failing test's report.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final

import aiohttp

START_TIMEOUT_S: Final = 60.0
"""A hub process may take this long to answer HTTP (imports, migrations on a busy CI box)."""


class RigError(Exception):
    """The rig itself failed (a process, the feed, a peer): not a finding about the hub."""


class HubProcess:
    """Hub processes started, killed and stopped one after another on one folder."""

    def __init__(self, folder: Path, *, base_url: str, env: Callable[[], dict[str, str]]) -> None:
        self.folder = folder
        self.base_url = base_url
        self._env = env
        self.number = 0
        """How many were started so far; the running one's number (1 = the first)."""
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    async def cli(self, *args: str, stdin: bytes | None = None) -> str:
        """Run ``commhub ARGS`` to its end; its output, or :class:`RigError` if it failed."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "commhub", *args,
            env=self._env(), cwd=self.folder,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(stdin), START_TIMEOUT_S)
        if process.returncode != 0:
            raise RigError(f"commhub {' '.join(args)} failed:\n{out.decode()}")
        return out.decode()

    async def spawn(self, **extra_env: str) -> None:
        """Start a new ``commhub serve``; returns at once (see :meth:`start`)."""
        if self._process is not None:
            raise RigError("a hub is already running")
        self.number += 1
        self._log = (self.folder / f"hub-{self.number}.log").open("wb")
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "commhub", "serve",
            env=self._env() | extra_env, cwd=self.folder,
            stdout=self._log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip

    async def start(self, http: aiohttp.ClientSession, **extra_env: str) -> None:
        """Start a new ``commhub serve`` and wait until it answers HTTP."""
        await self.spawn(**extra_env)
        await self.answering(http)

    async def answering(self, http: aiohttp.ClientSession) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while not await self._answers(http):
            if loop.time() > deadline:
                raise RigError(f"hub {self.number} answering HTTP: not within {START_TIMEOUT_S}s")
            await asyncio.sleep(0.1)

    def running(self) -> asyncio.subprocess.Process:
        process = self._process
        if process is None or process.returncode is not None:
            raise RigError(f"hub {self.number} is not running:\n{self.logs()[-3000:]}")
        return process

    def kill_now(self) -> None:
        """SIGKILL at once, from wherever the test is (a peer's handler included)."""
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)

    async def kill(self) -> None:
        """``kill -9``: the process ends where it is."""
        self.running()
        self.kill_now()
        await self.wait_killed()

    async def wait_killed(self, timeout: float = 120.0) -> None:
        """Wait for the end of a kill (set off here or by a peer); it must be SIGKILL."""
        process = self._process
        if process is None:
            raise RigError("no hub running")
        await asyncio.wait_for(process.wait(), timeout)
        if process.returncode != -signal.SIGKILL:
            raise RigError(f"hub {self.number} ended with {process.returncode}, not SIGKILL")
        self._forget()

    async def stop(self) -> None:
        """The end of a test: stop the hub as a user would (Ctrl-C), if one runs."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        self._forget()

    def logs(self) -> str:
        """Every process's output (the access log left out), for a failing test's report."""
        parts = []
        for number in range(1, self.number + 1):
            path = self.folder / f"hub-{number}.log"
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()
                said = "\n".join(line for line in lines if " aiohttp.access: " not in line)
                parts.append(f"----- hub {number} (access log left out) -----\n{said}")
        return "\n".join(parts)

    def _forget(self) -> None:
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    async def _answers(self, http: aiohttp.ClientSession) -> bool:
        self.running()
        try:
            async with http.get(f"{self.base_url}/api/v1/health") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False
