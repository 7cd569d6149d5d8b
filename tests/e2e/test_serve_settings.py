"""A wrong setting stops `commhub serve` at once: one line naming the variable, no traceback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

CASES = [
    ("COMMHUB_DATABASE_URL", "nonsense"),
    ("COMMHUB_DATABASE_URL", "mysql://db/commhub"),
    ("COMMHUB_DATABASE_URL", "postgresql://db/commhub"),
    ("COMMHUB_REDIS_URL", "http://127.0.0.1:6379/0"),
    ("COMMHUB_REDIS_URL", "redis://127.0.0.1:99999/0"),
    ("COMMHUB_REDIS_URL", "redis://127.0.0.1:6379/zero"),
    ("COMMHUB_PUBLIC_URL", "hub.example.com"),
    ("COMMHUB_RECORDINGS_URL", "ftp://pbx.example.com/{file}"),
    ("COMMHUB_RECORDINGS_URL", "https://pbx.example.com/monitor/"),
    ("COMMHUB_TIME_ZONE", "Mars/Olympus_Mons"),
    ("COMMHUB_PORT", "70000"),
    ("COMMHUB_PORT", "0"),
    ("COMMHUB_PORT", "-1"),
    ("COMMHUB_PORT", "eighty"),
    ("COMMHUB_SESSION_TTL_HOURS", "-5"),
    ("COMMHUB_MAX_UPLOAD_MB", "-1"),
    ("COMMHUB_LOGIN_MAX_FAILURES", "-3"),
    ("COMMHUB_PHONE_REGION", "XX"),
    ("COMMHUB_LANGUAGE", "fr"),
    ("COMMHUB_LOG_LEVEL", "LOUD"),
    ("COMMHUB_SMS_STOP_WORDS", "STOP"),
]


async def _serve(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "commhub",
        "serve",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("serve started despite the wrong setting")
    return process.returncode or 0, out.decode()


def _environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMHUB_")},
        "COMMHUB_DATA_DIR": str(tmp_path / "var"),
        "COMMHUB_PORT": "1",  # never reached: every case stops before listening
        **settings,
    }


@pytest.mark.parametrize(("variable", "value"), CASES)
async def test_a_wrong_setting_stops_serve_naming_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    code, output = await _serve(_environment(tmp_path, **{variable: value}), tmp_path)
    assert code != 0, output
    assert "Traceback" not in output, output
    assert variable in output, output
    assert len(output.strip().splitlines()) == 1, output
    assert not (tmp_path / "var" / "commhub.db").exists()  # nothing was opened


async def test_a_wrong_port_option_stops_serve(tmp_path: Path) -> None:
    code, output = await _serve(_environment(tmp_path), tmp_path, "--port", "70000")
    assert code != 0 and "Traceback" not in output and "--port" in output, output
