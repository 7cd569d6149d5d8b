"""Import queue queries: whose turn it is to write, leases, and the states an import goes through.

Imports that write run one at a time across every process (web processes,
arq workers, the command line): the turn is taken in a transaction that
first serialises with every other taker (a PostgreSQL transaction-level
advisory lock, SQLite's single write lock), so two processes can never both
see the turn free. The holder keeps a lease on its ``imports`` row; a holder
that dies stops renewing it, and the next taker marks its import
``interrupted`` once the lease has run out. Dry runs write nothing and need
no turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import and_, false, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.models import Import, utcnow

QUEUED: Final = "queued"
RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"
INTERRUPTED: Final = "interrupted"
CANCELLED: Final = "cancelled"
FINISHED: Final = (DONE, FAILED, INTERRUPTED, CANCELLED)

TURN_LOCK_KEY: Final = 0x636F6D6D_696D70
"""The PostgreSQL advisory lock that serialises taking the import turn ("comm" "imp")."""

INTERRUPTED_BY_CRASH: Final = "the hub stopped while importing: resume or restart it"
INTERRUPTED_BY_LEASE: Final = (
    "the process running this import stopped answering: resume or restart it"
)


@dataclass(frozen=True, slots=True)
class Turn:
    """An import this process may now run: its id and the lease's holder name."""

    import_id: int
    holder: str


async def _serialise(session: AsyncSession) -> None:
    """Wait until no other transaction is taking the turn; held until commit."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": TURN_LOCK_KEY})
    else:
        # Any write statement takes SQLite's one write lock for the whole transaction.
        await session.execute(update(Import).where(false()).values(status=Import.status))


async def take_turn(
    session: AsyncSession, holder: str, lease_s: float, *, import_id: int | None = None
) -> Turn | None:
    """Take the turn for the first queued import, or None while another holds it.

    ``import_id`` names a dry run to start (it needs no turn). Running
    imports whose lease ran out are marked interrupted on the way. The
    caller commits.
    """
    await _serialise(session)
    now = utcnow()
    await session.execute(
        update(Import)
        .where(Import.status == RUNNING, Import.lease_until < now)
        .values(
            status=INTERRUPTED,
            error=INTERRUPTED_BY_LEASE,
            claimed_by=None,
            lease_until=None,
            finished_at=now,
        )
    )
    lease = now + timedelta(seconds=lease_s)
    if import_id is not None:
        claimed = await session.execute(
            update(Import)
            .where(Import.id == import_id, Import.status == QUEUED, Import.dry_run.is_(True))
            .values(status=RUNNING, claimed_by=holder, lease_until=lease)
        )
        return Turn(import_id, holder) if _count(claimed) else None
    busy = await session.scalar(
        select(func.count())
        .select_from(Import)
        .where(Import.status == RUNNING, Import.dry_run.is_(False))
    )
    if busy:
        return None
    first = await session.scalar(
        select(func.min(Import.id)).where(Import.status == QUEUED, Import.dry_run.is_(False))
    )
    if first is None:
        return None
    await session.execute(
        update(Import)
        .where(Import.id == first)
        .values(status=RUNNING, claimed_by=holder, lease_until=lease, error=None)
    )
    return Turn(first, holder)


async def renew(session: AsyncSession, turn: Turn, lease_s: float, **values: Any) -> bool:
    """Push the lease on and write ``values``; false when the import is no longer ours.

    It is no longer ours when someone cancelled it or it was marked
    interrupted after our lease ran out: the caller must then roll back and stop.
    """
    result = await session.execute(
        update(Import)
        .where(
            Import.id == turn.import_id,
            Import.status == RUNNING,
            Import.claimed_by == turn.holder,
        )
        .values(lease_until=utcnow() + timedelta(seconds=lease_s), **values)
    )
    return _count(result) == 1


async def release(session: AsyncSession, turn: Turn, status: str, **values: Any) -> bool:
    """End our run of the import with ``status``; false when it was not ours any more."""
    result = await session.execute(
        update(Import)
        .where(
            Import.id == turn.import_id,
            Import.status == RUNNING,
            Import.claimed_by == turn.holder,
        )
        .values(status=status, claimed_by=None, lease_until=None, finished_at=utcnow(), **values)
    )
    return _count(result) == 1


async def interrupt_holders(session: AsyncSession, holder_prefix: str) -> list[int]:
    """Mark interrupted the running imports of holders named ``holder_prefix…`` (a dead process)."""
    ids = list(
        await session.scalars(
            select(Import.id).where(
                Import.status == RUNNING, Import.claimed_by.startswith(holder_prefix)
            )
        )
    )
    if ids:
        await session.execute(
            update(Import)
            .where(Import.id.in_(ids), Import.status == RUNNING)
            .values(
                status=INTERRUPTED,
                error=INTERRUPTED_BY_CRASH,
                claimed_by=None,
                lease_until=None,
                finished_at=utcnow(),
            )
        )
    return ids


async def queued_ids(session: AsyncSession) -> list[int]:
    """Imports waiting for their turn (or dry runs waiting to start), oldest first."""
    return list(
        await session.scalars(select(Import.id).where(Import.status == QUEUED).order_by(Import.id))
    )


async def places(session: AsyncSession, ids: Sequence[int]) -> dict[int, int]:
    """Place in the queue of each queued import of ``ids``: 1 runs next (dry runs wait for none)."""
    wanted = set(ids)
    if not wanted:
        return {}
    waiting = await session.scalars(
        select(Import.id)
        .where(Import.status == QUEUED, Import.dry_run.is_(False), Import.id <= max(wanted))
        .order_by(Import.id)
    )
    found: dict[int, int] = {}
    for place, ident in enumerate(waiting, start=1):
        if ident in wanted:
            found[ident] = place
    return found


async def cancel(session: AsyncSession, import_id: int, why: str) -> bool:
    """Cancel a queued, running or interrupted import; its holder stops at its next step."""
    result = await session.execute(
        update(Import)
        .where(Import.id == import_id, Import.status.in_((QUEUED, RUNNING, INTERRUPTED)))
        .values(
            status=CANCELLED, error=why, claimed_by=None, lease_until=None, finished_at=utcnow()
        )
    )
    return _count(result) == 1


async def requeue(session: AsyncSession, import_id: int, *, restart: bool) -> bool:
    """Queue a stopped import again: from its last committed row, or (``restart``) from row 1."""
    resumable: tuple[str, ...] = (INTERRUPTED, CANCELLED)
    values: dict[str, Any] = {"status": QUEUED, "error": None, "finished_at": None}
    if restart:
        resumable = FINISHED
        values.update(
            rows_total=0,
            rows_done=0,
            created=0,
            merged=0,
            rejected=0,
            progress=0.0,
            errors_path=None,
            errors_bytes=0,
        )
    result = await session.execute(
        update(Import)
        .where(
            Import.id == import_id,
            Import.status.in_(resumable),
            Import.files_deleted_at.is_(None),
        )
        .values(**values)
    )
    return _count(result) == 1


async def expired_files(session: AsyncSession, before: datetime) -> list[Import]:
    """Imports neither waiting nor running, files kept, that ended (or began) before ``before``."""
    rows = await session.scalars(
        select(Import).where(
            Import.files_deleted_at.is_(None),
            Import.status.not_in((QUEUED, RUNNING)),
            or_(
                Import.finished_at < before,
                and_(Import.finished_at.is_(None), Import.created_at < before),
            ),
        )
    )
    return list(rows)


async def mark_files_deleted(session: AsyncSession, ids: Sequence[int]) -> None:
    if ids:
        await session.execute(
            update(Import)
            .where(Import.id.in_(list(ids)))
            .values(files_deleted_at=utcnow(), errors_path=None, errors_bytes=0)
        )


def _count(result: Any) -> int:
    return int(result.rowcount or 0)
