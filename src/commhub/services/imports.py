"""Uploaded imports: the row that queues an uploaded file, and the file of rows it rejected.

The upload itself (saving the file, checking its mapping against the
header) happens before this; what is left is the import's row, committed
before its job is handed out so the job always finds it.
"""

from __future__ import annotations

from pathlib import Path

from commhub.jobs.queue import JobQueue
from commhub.models import Import
from commhub.services.database import Database
from commhub.services.import_control import IMPORT_JOB, ImportView, job_id, view


async def queue_upload(
    db: Database,
    jobs: JobQueue,
    *,
    user_id: int,
    filename: str,
    stored_path: Path,
    mapping: dict[str, object],
    dry_run: bool,
) -> ImportView:
    """Queue the uploaded file's import and hand out its job; the import as it then stands."""
    async with db.begin() as session:
        row = Import(
            user_id=user_id,
            filename=filename,
            stored_path=str(stored_path),
            mapping=mapping,
            dry_run=dry_run,
            status="queued",
        )
        session.add(row)
    await jobs.enqueue(IMPORT_JOB, row.id, job_id=job_id(row.id))
    return await view(db, row.id)


async def rejected_rows_file(db: Database, import_id: int) -> Path | None:
    """The CSV of the rows an import rejected; ``None`` when it has none or it was deleted."""
    async with db() as session:
        row = await session.get(Import, import_id)
    if row is None or not row.errors_path or not Path(row.errors_path).exists():
        return None
    return Path(row.errors_path)
