"""Running queued imports one at a time, exactly, across crashes and cancels.

An import that writes waits for the turn (see :mod:`commhub.store.import_queue`):
two imports of the same people never interleave, whichever processes run
them, so the second finds the first one's contacts and merges into them. The
holder renews a lease while it runs; each batch commits its rows together
with the counters and the rejected-rows file's length, so an interrupted
import resumes from its last committed row with nothing counted twice.
A cancel is a status change any process may make; the holder sees it
within :data:`WATCH_EVERY_S` and stops before its next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.config import Settings
from commhub.domain.imports import ImportMapping, MappingError
from commhub.models import Import
from commhub.services.importer import (
    ImportProgress,
    ImportReport,
    ImportStoppedError,
    ProgressCallback,
    ResumePoint,
    import_contacts,
)
from commhub.services.spreadsheets import SheetError
from commhub.store import import_queue as queue
from commhub.store.engine import SessionFactory

log = logging.getLogger(__name__)

LEASE_S: Final = 30.0
"""How long a holder that stopped answering keeps the turn before others take it."""
RENEW_EVERY_S: Final = 5.0
WATCH_EVERY_S: Final = 0.25
"""How often a running import looks whether it was cancelled."""
POLL_TURN_S: Final = 0.5
"""How often an import waiting in the queue asks whether its turn has come."""
INPROCESS: Final = "inprocess"
WORKER: Final = "worker"
CLI: Final = "cli"


def holder_name(kind: str) -> str:
    """A lease holder's name: what runs it, where, and a token unique to this run."""
    return f"{kind}:{socket.gethostname()[:40]}:{os.getpid()}:{uuid4().hex[:12]}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one run of an import ended (``status`` as stored, the report when it got one)."""

    status: str
    report: ImportReport | None = None
    error: str | None = None


async def run_when_queued_turn_comes(
    sessions: SessionFactory,
    settings: Settings,
    import_id: int,
    *,
    kind: str,
    progress: ProgressCallback | None = None,
    drain: bool = True,
) -> Outcome | None:
    """Wait while import ``import_id`` is queued; run each import whose turn this process takes.

    Whoever takes the turn runs the first queued import, which may be one
    whose own job was lost (its process stopped, or its job ran out of time
    while waiting); with ``drain`` a job also runs the imports still queued
    after its own, so none is left waiting for a job that will not come.
    Returns how ``import_id`` ended when this process ran it, or None when
    another did (or it left the queue).
    """
    holder = holder_name(kind)
    result: Outcome | None = None
    while True:
        async with sessions() as session:
            row = await session.get(Import, import_id)
            waiting = row is not None and row.status == queue.QUEUED
            if not waiting and not drain:
                return result
            dry_run = waiting and row is not None and row.dry_run
            turn = await queue.take_turn(
                session, holder, LEASE_S, import_id=import_id if dry_run else None
            )
            await session.commit()
        if turn is None:
            if not waiting:
                return result
            await asyncio.sleep(POLL_TURN_S)
            continue
        outcome = await run_turn(sessions, settings, turn, progress=progress)
        if turn.import_id == import_id:
            result = outcome


async def run_turn(
    sessions: SessionFactory,
    settings: Settings,
    turn: queue.Turn,
    *,
    progress: ProgressCallback | None = None,
) -> Outcome:
    """Run (or resume) the import whose turn we hold, and give the turn back with its outcome."""
    async with sessions() as session:
        row = await session.get(Import, turn.import_id)
        if row is None:  # pragma: no cover - rows are never deleted while running
            return Outcome(queue.FAILED, error="the import vanished")
        source, raw_mapping, dry_run = Path(row.stored_path), dict(row.mapping), row.dry_run
        resume = ResumePoint(row.rows_done, row.created, row.merged, row.rejected, row.errors_bytes)
        errors_path = (
            Path(row.errors_path)
            if row.errors_path
            else settings.imports_dir / f"{turn.import_id}-rejected.csv"
        )
    watcher = _Watcher(sessions, turn)

    async def checkpoint(session: AsyncSession, step: ImportProgress, size: int) -> bool:
        return await queue.renew(
            session,
            turn,
            LEASE_S,
            rows_done=step.rows,
            created=step.created,
            merged=step.merged,
            rejected=step.rejected,
            progress=round(step.fraction, 4),
            errors_path=str(errors_path) if size else None,
            errors_bytes=size,
        )

    try:
        async with watcher:
            mapping = ImportMapping.from_dict(raw_mapping)
            report = await import_contacts(
                sessions,
                source,
                mapping,
                region=settings.phone_region,
                dry_run=dry_run,
                errors_path=errors_path,
                import_id=None if dry_run else turn.import_id,
                progress=progress,
                resume=resume,
                checkpoint=checkpoint,
                should_stop=watcher.stopped,
            )
    except ImportStoppedError:
        return Outcome(await _status(sessions, turn.import_id))
    except (MappingError, SheetError) as exc:
        await _release(sessions, turn, queue.FAILED, error=str(exc))
        return Outcome(queue.FAILED, error=str(exc))
    except asyncio.CancelledError:
        await asyncio.shield(
            _release(sessions, turn, queue.INTERRUPTED, error=queue.INTERRUPTED_BY_CRASH)
        )
        raise
    except Exception as exc:
        log.exception("import %s stopped on an unexpected error", turn.import_id)
        error = f"internal error: {exc!r}; resume it once the cause is fixed"
        await _release(sessions, turn, queue.INTERRUPTED, error=error)
        return Outcome(queue.INTERRUPTED, error=error)
    await _release(
        sessions,
        turn,
        queue.DONE,
        rows_total=report.rows,
        rows_done=report.rows,
        created=report.created,
        merged=report.merged,
        rejected=report.rejected,
        progress=1.0,
        errors_path=str(report.errors_path) if report.errors_path else None,
    )
    return Outcome(queue.DONE, report)


async def _release(
    sessions: SessionFactory, turn: queue.Turn, status: str, **values: object
) -> None:
    async with sessions() as session:
        await queue.release(session, turn, status, **values)
        await session.commit()


async def _status(sessions: SessionFactory, import_id: int) -> str:
    async with sessions() as session:
        status = await session.scalar(select(Import.status).where(Import.id == import_id))
    return status or queue.FAILED


class _Watcher:
    """Renews the lease while an import runs and notices when it is no longer ours."""

    def __init__(self, sessions: SessionFactory, turn: queue.Turn) -> None:
        self._sessions = sessions
        self._turn = turn
        self._stop = False
        self._task: asyncio.Task[None] | None = None

    def stopped(self) -> bool:
        return self._stop

    async def __aenter__(self) -> _Watcher:
        self._task = asyncio.create_task(self._run(), name=f"import {self._turn.import_id} lease")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while not self._stop:
            await asyncio.sleep(WATCH_EVERY_S)
            try:
                if loop.time() - renewed >= RENEW_EVERY_S:
                    async with self._sessions() as session:
                        ours = await queue.renew(session, self._turn, LEASE_S)
                        await session.commit()
                    renewed = loop.time()
                else:
                    async with self._sessions() as session:
                        ours = await _still_ours(session, self._turn)
            except Exception:  # a database blip: the batch's own checkpoint decides
                log.warning(
                    "import %s: cannot check its lease", self._turn.import_id, exc_info=True
                )
                continue
            if not ours:
                self._stop = True


async def _still_ours(session: AsyncSession, turn: queue.Turn) -> bool:
    row = (
        await session.execute(
            select(Import.status, Import.claimed_by).where(Import.id == turn.import_id)
        )
    ).one_or_none()
    return row is not None and row.status == queue.RUNNING and row.claimed_by == turn.holder
