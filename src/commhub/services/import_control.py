"""What people do to imports besides uploading them: watch the queue, cancel, resume, restart.

Also what the hub does to them on its own: on start, imports a crash left
``running`` in this process are marked ``interrupted`` and the queue's jobs
are handed out again; after the retention period an import's files are
deleted, its row staying to say so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

from sqlalchemy import select

from commhub.config import Settings
from commhub.jobs.queue import JobQueue
from commhub.models import Import, utcnow
from commhub.services.errors import Conflict, NotFound
from commhub.services.import_runs import INPROCESS
from commhub.store import import_queue as queue
from commhub.store.engine import SessionFactory

log = logging.getLogger(__name__)

IMPORT_JOB: Final = "run_import"
"""Name of the job function in ``commhub.jobs.imports`` (jobs are enqueued by name)."""
LIST_LIMIT: Final = 50
CANCELLED_BY: Final = "cancelled by {who}; the rows imported before stay"


@dataclass(frozen=True, slots=True)
class ImportView:
    """An import as people see it: the row, and its place in the queue while it waits."""

    row: Import
    place: int | None


def job_id(import_id: int) -> str:
    return f"import-{import_id}"


async def view(sessions: SessionFactory, import_id: int) -> ImportView:
    async with sessions() as session:
        row = await session.get(Import, import_id)
        if row is None:
            raise NotFound("import", import_id)
        places = await queue.places(session, [row.id])
    return ImportView(row, places.get(row.id))


async def recent(sessions: SessionFactory, limit: int = LIST_LIMIT) -> list[ImportView]:
    """The latest imports, newest first, with the queue's places."""
    async with sessions() as session:
        rows = list(await session.scalars(select(Import).order_by(Import.id.desc()).limit(limit)))
        places = await queue.places(session, [r.id for r in rows if r.status == queue.QUEUED])
    return [ImportView(row, places.get(row.id)) for row in rows]


async def cancel(sessions: SessionFactory, import_id: int, *, who: str) -> ImportView:
    """Cancel a waiting, running or interrupted import; a running one stops within a second."""
    async with sessions() as session:
        done = await queue.cancel(session, import_id, CANCELLED_BY.format(who=who))
        await session.commit()
    found = await view(sessions, import_id)
    if not done:
        raise Conflict("status", f"import {import_id} is {found.row.status}: nothing to cancel")
    return found


async def requeue(sessions: SessionFactory, import_id: int, *, restart: bool) -> ImportView:
    """Queue a stopped import again, from its last committed row or (``restart``) from row 1.

    The caller hands its job to the job queue (or runs it) afterwards.
    """
    async with sessions() as session:
        done = await queue.requeue(session, import_id, restart=restart)
        await session.commit()
    found = await view(sessions, import_id)
    if not done:
        row = found.row
        if row.files_deleted_at is not None:
            raise Conflict("status", f"import {import_id}: its file was deleted after retention")
        can = "interrupted, cancelled or finished" if restart else "interrupted or cancelled"
        raise Conflict("status", f"import {import_id} is {row.status}: only {can} ones can")
    return found


async def queue_again(
    sessions: SessionFactory, jobs: JobQueue, import_id: int, *, restart: bool
) -> ImportView:
    """:func:`requeue` the import and hand out its job; the import as it then stands."""
    await requeue(sessions, import_id, restart=restart)
    await jobs.enqueue(IMPORT_JOB, import_id, job_id=job_id(import_id))
    return await view(sessions, import_id)


async def recover(sessions: SessionFactory, *, in_process: bool) -> list[int]:
    """After a start: imports this kind of process left running are interrupted; the queue's ids.

    In-process jobs die with their process, so every import a previous
    in-process runner held is over; an arq worker's import is left to its
    lease. The returned queued imports need their jobs handed out again.
    """
    async with sessions() as session:
        if in_process:
            stopped = await queue.interrupt_holders(session, f"{INPROCESS}:")
            if stopped:
                log.warning("imports %s were interrupted by a stop: resume them", stopped)
        waiting = await queue.queued_ids(session)
        await session.commit()
    return waiting


async def delete_expired_files(sessions: SessionFactory, settings: Settings) -> list[int]:
    """Delete the files of imports that ended more than the retention period ago.

    Only files the hub keeps (under its imports folder) are deleted: a file
    imported from the command line stays where its owner put it.
    """
    before = utcnow() - timedelta(days=settings.import_retention_days)
    folder = settings.imports_dir.resolve()
    async with sessions() as session:
        rows = [
            row
            for row in await queue.expired_files(session, before)
            if _inside(folder, row.stored_path) or _inside(folder, row.errors_path)
        ]
        for row in rows:
            for name in (row.stored_path, row.errors_path):
                if _inside(folder, name):
                    Path(str(name)).unlink(missing_ok=True)
        ids = [row.id for row in rows]
        await queue.mark_files_deleted(session, ids)
        await session.commit()
    if ids:
        log.info("deleted the files of %d imports past retention", len(ids))
    return ids


def _inside(folder: Path, name: str | None) -> bool:
    return bool(name) and Path(str(name)).resolve().is_relative_to(folder)
