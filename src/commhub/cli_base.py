"""What every ``commhub`` command shares: its settings, and one way to run and fail.

Kept apart from ``cli.py`` so the command groups in other modules
(``cli_imports.py``) can use it without importing the command line itself.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from pydantic_settings import SettingsError

from commhub import logs
from commhub.config import Settings

T = TypeVar("T")


def load_settings() -> Settings:
    """Settings from the environment, or a one-line error naming the bad variable.

    Logging is set up from them at once (warnings only, as Python does when
    nothing is configured, but with personal data masked): ``serve`` and
    ``worker`` then log at ``COMMHUB_LOG_LEVEL``.
    """
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise click.ClickException(
            f"invalid setting COMMHUB_{field.upper()}: {first['msg']}"
        ) from None
    except SettingsError as exc:  # a list setting whose value is not JSON
        found = re.search(r'field "(\w+)"', str(exc))
        field = found.group(1) if found else "?"
        raise click.ClickException(
            f'invalid setting COMMHUB_{field.upper()}: not a JSON list such as ["STOP"]'
        ) from None
    logs.configure(settings, level="WARNING", line="%(message)s")
    return settings


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine for a command, turning known errors into clean exits."""
    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
