"""``commhub import`` and ``commhub imports …``: import from the command line, and
cancel, resume or restart any import.

A command-line import is an import like an uploaded one: it has a row (so the
API and the console show it), waits for its turn (so it never interleaves with
another import of the same people) and runs here, in the foreground.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from commhub.cli_base import load_settings, run
from commhub.config import Settings

T = TypeVar("T")


def _with_store(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(sessions)`` against the configured database; known failures become messages."""
    from sqlalchemy.exc import DBAPIError

    from commhub.bootstrap import open_database
    from commhub.services.errors import ServiceError

    async def go() -> T:
        async with open_database(settings) as db:
            return await work(db)

    try:
        return run(go)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    except DBAPIError as exc:
        message = str(exc.orig).splitlines()[0]
        if "no such table" in message or "does not exist" in message:
            message += " (run `commhub migrate` first)"
        raise click.ClickException(f"database error: {message}") from None


@click.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--mapping",
    "mapping_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file mapping card fields to the file's columns.",
)
@click.option("--dry-run", is_flag=True, help="Report what would happen; write nothing.")
@click.option(
    "--errors",
    "errors_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the rejected rows (default: FILE-rejected.csv beside FILE).",
)
@click.option("--region", help="ISO region for numbers without a country code.")
def import_file(
    file: Path, mapping_file: Path, dry_run: bool, errors_file: Path | None, region: str | None
) -> None:
    """Import contacts from a CSV or XLSX FILE, merging into existing contacts.

    It waits while another import runs; Ctrl-C leaves it interrupted, to resume
    with `commhub imports resume ID`.
    """
    from commhub.domain.imports import ImportMapping, MappingError
    from commhub.models import Import
    from commhub.services.spreadsheets import SheetError, open_sheet

    settings = load_settings()
    errors_path = (errors_file or file.with_name(f"{file.stem}-rejected.csv")).resolve()
    try:
        mapping = ImportMapping.from_json(mapping_file.read_text(encoding="utf-8-sig"))
        if region:
            mapping = mapping.with_region(region)
    except OSError as exc:
        raise click.ClickException(f"cannot read mapping {mapping_file}: {exc.strerror}") from None
    except (MappingError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{mapping_file}: {exc}") from None
    try:
        with open_sheet(file) as sheet:
            mapping.bind(sheet.header, region=settings.phone_region)
    except SheetError as exc:
        raise click.ClickException(str(exc)) from None
    except MappingError as exc:
        raise click.ClickException(f"{file}: {exc}") from None

    async def create(sessions: Any) -> int:
        async with sessions() as session:
            row = Import(
                filename=file.name,
                stored_path=str(file.resolve()),
                errors_path=str(errors_path),
                mapping=mapping.to_dict(),
                dry_run=dry_run,
                status="queued",
            )
            session.add(row)
            await session.commit()
            return row.id

    import_id = _with_store(settings, create)
    _run_here(settings, import_id)


def _run_here(settings: Settings, import_id: int) -> None:
    """Run a queued import in this process when its turn comes, with a progress bar."""
    from commhub.services.import_runs import CLI, Outcome, run_when_queued_turn_comes
    from commhub.services.importer import ImportProgress

    # The bar is for a person watching; piped output gets only the report.
    bar = click.progressbar(length=1000, label=f"import {import_id}", file=sys.stderr)
    shown = sys.stderr.isatty()

    async def show(step: ImportProgress) -> None:
        if shown:
            bar.update(int(step.fraction * 1000) - bar.pos)

    async def go(sessions: Any) -> Outcome | None:
        with contextlib.ExitStack() as stack:
            if shown:
                stack.enter_context(bar)
            return await run_when_queued_turn_comes(
                sessions, settings, import_id, kind=CLI, progress=show, drain=False
            )

    outcome = _with_store(settings, go)
    if outcome is None:
        raise click.ClickException(f"import {import_id} left the queue before it ran here")
    report = outcome.report
    if report is None:
        raise click.ClickException(f"import {import_id} {outcome.status}: {outcome.error or ''}")
    prefix = "dry run, nothing written: " if report.dry_run else ""
    click.echo(
        f"import {import_id}, {prefix}{report.rows} rows in {report.seconds:.1f}s: "
        f"{report.created} created, {report.merged} merged, {report.rejected} rejected"
        + (f", {report.blank} blank" if report.blank else "")
    )
    if report.errors_path is not None:
        click.echo(f"rejected rows and reasons: {report.errors_path}")


@click.group()
def imports() -> None:
    """Follow, cancel, resume or restart imports (uploaded or from the command line)."""


@imports.command("list")
def imports_list() -> None:
    """The latest imports: id, status (with the place of those queued), counters, file."""
    from commhub.services import import_control

    views = _with_store(load_settings(), import_control.recent)
    for found in views:
        row = found.row
        status = f"queued #{found.place}" if found.place else row.status
        gone = " (files deleted)" if row.files_deleted_at else ""
        click.echo(
            f"{row.id}\t{status}\t{row.rows_done} rows: {row.created} created, "
            f"{row.merged} merged, {row.rejected} rejected\t{row.filename}{gone}"
        )


@imports.command("cancel")
@click.argument("import_id", type=int)
def imports_cancel(import_id: int) -> None:
    """Cancel import IMPORT_ID; a running one stops within a second, keeping what it imported."""
    from commhub.services import import_control

    async def work(sessions: Any) -> Any:
        return await import_control.cancel(sessions, import_id, who="the command line")

    found = _with_store(load_settings(), work)
    click.echo(f"import {import_id} cancelled after {found.row.rows_done} rows")


@imports.command("resume")
@click.argument("import_id", type=int)
def imports_resume(import_id: int) -> None:
    """Resume interrupted or cancelled import IMPORT_ID from its last committed row, here."""
    _requeue_and_run(import_id, restart=False)


@imports.command("restart")
@click.argument("import_id", type=int)
def imports_restart(import_id: int) -> None:
    """Run import IMPORT_ID again from its first row, here (imported rows are merged)."""
    _requeue_and_run(import_id, restart=True)


def _requeue_and_run(import_id: int, *, restart: bool) -> None:
    from commhub.services import import_control

    settings = load_settings()

    async def work(sessions: Any) -> Any:
        return await import_control.requeue(sessions, import_id, restart=restart)

    _with_store(settings, work)
    _run_here(settings, import_id)


__all__ = ["import_file", "imports"]
