"""The background job behind an uploaded import: run it and keep its row up to date.

The ``imports`` row is the record a manager watches (status, counters,
progress, errors file); the job only fills it in. A mapping or file the
importer refuses ends the import as ``failed`` with the reason and is not
retried (it would fail the same way); anything unexpected is recorded and
re-raised so the queue retries it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

from commhub.config import Settings
from commhub.domain.imports import ImportMapping, MappingError
from commhub.services.importer import ImportProgress, import_contacts
from commhub.services.spreadsheets import SheetError
from commhub.store import imports as store
from commhub.store.engine import SessionFactory
from commhub.store.schema import utcnow

log = logging.getLogger(__name__)

QUEUED: Final = "queued"
RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"


async def run_import(ctx: dict[str, Any], import_id: int) -> None:
    """Run import ``import_id``; a finished import run again (a replayed job) is left alone."""
    sessions: SessionFactory = ctx["sessions"]
    settings: Settings = ctx["settings"]
    async with sessions() as session:
        row = await store.get_import(session, import_id)
        if row is None:
            log.warning("import %s vanished before its job ran", import_id)
            return
        if row.status == DONE:
            return
        source, raw_mapping, dry_run = Path(row.stored_path), dict(row.mapping), row.dry_run
        await store.record_progress(
            session,
            import_id,
            status=RUNNING,
            rows_done=0,
            created=0,
            merged=0,
            rejected=0,
            progress=0.0,
            error=None,
            finished_at=None,
        )
        await session.commit()

    async def progress(step: ImportProgress) -> None:
        async with sessions() as session:
            await store.record_progress(
                session,
                import_id,
                rows_done=step.rows,
                created=step.created,
                merged=step.merged,
                rejected=step.rejected,
                progress=round(step.fraction, 4),
            )
            await session.commit()

    errors_path = settings.imports_dir / f"{import_id}-rejected.csv"
    try:
        mapping = ImportMapping.from_dict(raw_mapping)
        report = await import_contacts(
            sessions,
            source,
            mapping,
            region=settings.phone_region,
            dry_run=dry_run,
            errors_path=errors_path,
            import_id=None if dry_run else import_id,
            progress=progress,
        )
    except (MappingError, SheetError) as exc:
        await _finish(sessions, import_id, status=FAILED, error=str(exc))
        return
    except Exception as exc:
        await _finish(sessions, import_id, status=FAILED, error=f"internal error: {exc!r}")
        raise
    await _finish(
        sessions,
        import_id,
        status=DONE,
        rows_total=report.rows,
        rows_done=report.rows,
        created=report.created,
        merged=report.merged,
        rejected=report.rejected,
        progress=1.0,
        errors_path=str(report.errors_path) if report.errors_path else None,
    )


async def _finish(sessions: SessionFactory, import_id: int, **values: Any) -> None:
    async with sessions() as session:
        await store.record_progress(session, import_id, finished_at=utcnow(), **values)
        await session.commit()
