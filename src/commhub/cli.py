"""The ``commhub`` command: serve, migrate, manage users, import, identify.

Every failure a user can cause ends in a one-line message on stderr and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from commhub.config import Settings

T = TypeVar("T")


def load_settings() -> Settings:
    """Settings from the environment, or a one-line error naming the bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise click.ClickException(
            f"invalid setting COMMHUB_{field.upper()}: {first['msg']}"
        ) from None


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine for a command, turning known errors into clean exits."""
    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except OSError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.version_option(package_name="commhub")
def main() -> None:
    """commhub: calls, SMS and e-mail on one contact base."""


@main.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from commhub.store.engine import open_engine
    from commhub.store.migrate import current_revision, upgrade

    settings = load_settings()

    async def go() -> str | None:
        engine = open_engine(settings.effective_database_url)
        try:
            await upgrade(engine)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    revision = run(go)
    click.echo(f"database at revision {revision}")


@main.command()
@click.argument("address")
@click.option("--region", help="ISO region for numbers without a country code.")
def identify(address: str, region: str | None) -> None:
    """Tell who ADDRESS (a phone in any format or an e-mail) belongs to."""
    from commhub.services.identify import Verdict
    from commhub.services.identify import identify as identify_address
    from commhub.store.engine import open_engine, session_factory

    settings = load_settings()

    async def go() -> Any:
        engine = open_engine(settings.effective_database_url)
        try:
            async with session_factory(engine)() as session:
                return await identify_address(
                    session, address, region=(region or settings.phone_region).upper()
                )
        finally:
            await engine.dispose()

    found = run(go)
    shown = found.normalized or found.address
    if found.verdict is Verdict.MATCH:
        click.echo(f"{shown}: contact {found.contact_ids[0]}")
    elif found.verdict is Verdict.AMBIGUOUS:
        ids = ", ".join(str(i) for i in found.contact_ids)
        click.echo(f"{shown}: ambiguous, contacts {ids}")
    elif found.verdict is Verdict.UNKNOWN:
        click.echo(f"{shown}: unknown")
        sys.exit(1)
    else:
        click.echo(f"{shown}: not a customer's address ({found.reason})")
        sys.exit(1)
