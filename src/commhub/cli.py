"""The ``commhub`` command: serve, migrate, manage users, import, identify.

Every failure a user can cause ends in a one-line message on stderr and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from commhub import logs
from commhub.cli_base import load_settings, run

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


@click.group()
@click.version_option(package_name="commhub")
def main() -> None:
    """commhub: calls, SMS and e-mail on one contact base."""


@main.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from commhub.bootstrap import migrate_database

    settings = load_settings()
    revision = run(lambda: migrate_database(settings))
    click.echo(f"database at revision {revision}")


@main.command()
@click.argument("address")
@click.option("--region", help="ISO region for numbers without a country code.")
def identify(address: str, region: str | None) -> None:
    """Tell who ADDRESS (a phone in any format or an e-mail) belongs to."""
    from commhub.bootstrap import open_database
    from commhub.services.identify import Verdict
    from commhub.services.identify import identify as identify_address

    settings = load_settings()

    async def go() -> Any:
        async with open_database(settings) as db, db() as session:
            return await identify_address(
                session, address, region=(region or settings.phone_region).upper()
            )

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


@main.command()
@click.option("--host", help="Interface to listen on (default from COMMHUB_HOST: 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port (default from COMMHUB_PORT: 8080)."
)
def serve(host: str | None, port: int | None) -> None:
    """Run the hub: web API, background jobs, migrations on start."""
    import gc

    from aiohttp import web

    from commhub.bootstrap import Hub, ensure_first_admin, load_channels, open_hub
    from commhub.channels import ChannelConfigError
    from commhub.web.access_log import PathOnlyAccessLogger
    from commhub.web.app import create_app

    settings = load_settings()
    try:
        load_channels(settings)  # a wrong channels file stops here, before anything opens
    except ChannelConfigError as exc:
        raise click.ClickException(str(exc)) from None
    logs.configure(settings)
    listen_host, listen_port = host or settings.host, port or settings.port

    async def opener() -> Hub:
        hub = await open_hub(settings)  # builds the channels again, with the mailbox cursors
        password = await ensure_first_admin(hub)
        if password is not None:
            click.echo(
                f"\nFirst start: created user 'admin' with password {password}\n"
                "It is shown only this once: log in and change it "
                "(or set COMMHUB_ADMIN_PASSWORD before the first start).\n",
                err=True,
            )
        click.echo(
            f"commhub serving on http://{listen_host}:{listen_port}/ "
            f"(database {_database_label(settings.effective_database_url)}, "
            f"jobs {'on Redis' if settings.redis_url else 'in-process'}, "
            f"phone region {settings.phone_region})",
            err=True,
        )
        # Everything loaded so far lives as long as the process: keep it out of the
        # collector's full passes, which otherwise stall the event loop ~50 ms (a
        # screen pop waiting behind them) on a hub of this size.
        gc.collect()
        gc.freeze()
        return hub

    try:
        web.run_app(
            create_app(opener),
            host=listen_host,
            port=listen_port,
            print=None,
            access_log_class=PathOnlyAccessLogger,
        )
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {listen_host}:{listen_port}: {exc}") from None


def _database_label(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["operator", "marketer", "manager", "admin"]),
    required=True,
)
@click.option("--name", "display_name", default="", help="Name shown to colleagues.")
@click.option("--extension", help="PBX extension of the user's phone, e.g. 201.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
def user_add(
    username: str, role: str, display_name: str, extension: str | None, password_stdin: bool
) -> None:
    """Add a user who logs in with USERNAME."""
    from commhub.domain.roles import Role
    from commhub.services import users

    password = _read_password(password_stdin, "Password")

    async def create(session: AsyncSession) -> int:
        created = await users.create_user(
            session,
            username=username,
            password=password,
            role=Role(role),
            display_name=display_name,
            extension=extension,
        )
        return created.id

    user_id = _in_session(create)
    click.echo(f"user {username!r} ({role}) created with id {user_id}")


@user.command("password")
@click.argument("username")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
def user_password(username: str, password_stdin: bool) -> None:
    """Set a new password for USERNAME (e.g. a forgotten admin password); ends their sessions
    and API tokens."""
    from commhub.services import users
    from commhub.store import users as user_store

    password = _read_password(password_stdin, "New password")

    async def change(session: AsyncSession) -> bool:
        found = await user_store.by_username(session, username.strip())
        if found is None:
            return False
        await users.update_user(session, found.id, password=password)
        return True

    if not _in_session(change):
        raise click.ClickException(f"no user named {username!r}")
    click.echo(f"password of {username!r} changed; their sessions and API tokens have ended")


def _read_password(from_stdin: bool, prompt: str) -> str:
    """One line of standard input for scripts, else a hidden prompt asked twice."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))


def _in_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one database session of the configured hub and commit it.

    Errors a user can act on (a taken name, a weak password) become one-line
    CLI errors.
    """
    from commhub.bootstrap import open_hub
    from commhub.jobs.inprocess import InProcessJobs
    from commhub.services.errors import ServiceError

    settings = load_settings()

    async def go() -> T:
        hub = await open_hub(
            settings,
            jobs=InProcessJobs(functions=[], context={}),
            channels=[],
            background=False,
        )
        try:
            async with hub.sessions() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await hub.close()

    try:
        return run(go)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
def worker() -> None:
    """Run a background-job worker that takes jobs from Redis (needs COMMHUB_REDIS_URL)."""

    settings = load_settings()
    if not settings.redis_url:
        raise click.ClickException(
            "COMMHUB_REDIS_URL is not set: workers take jobs from Redis "
            "(without it, the hub runs jobs in its own process)"
        )
    from commhub.bootstrap import job_functions
    from commhub.jobs.queue import JobQueueError
    from commhub.jobs.worker import build_worker, run_worker

    logs.configure(settings)

    async def go() -> None:
        await run_worker(build_worker(settings, job_functions()))

    try:
        run(go)
    except JobQueueError as exc:
        raise click.ClickException(str(exc)) from None


def _add_import_commands() -> None:
    from commhub.cli_imports import import_file, imports

    main.add_command(import_file)
    main.add_command(imports)


_add_import_commands()
