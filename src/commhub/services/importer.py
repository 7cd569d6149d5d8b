"""Import a prospect base from a spreadsheet: stream, validate, merge, report.

The file is read in batches; each batch is parsed off the event loop,
checked for points already seen earlier in the same file, matched against
the contacts already in the hub, and written in one short transaction, so a
running hub keeps answering screen pops while a million rows go in.

Outcomes per row:

* **created** — no phone or e-mail of the row is known: a new contact;
* **merged** — its points belong to exactly one existing contact: new points,
  tags and consents are added to it, its empty name/company and missing extra
  fields are filled (see :func:`commhub.store.imports.add_consents` for how
  consent answers combine);
* **rejected** — unreadable (the reason names the column and value), no
  contact point, a point already used by an earlier row of the file
  ("duplicate of row N"), or points of two different existing contacts
  (ambiguous: a person must merge them first). Every rejected row is written,
  with its original cells, to the errors file, so the manager can fix it and
  import that file again with the same mapping.

A dry run takes the same path and the same decisions (in-file duplicates are
detected the same way, and rows of one file never match each other), so its
report is the one the real run will give; it just never writes to the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import itertools
import os
import re
import sqlite3
import tempfile
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.contacts import name_key
from commhub.domain.imports import ImportMapping, PackedDraft, RowReader, read_rows
from commhub.services.spreadsheets import Sheet, open_sheet
from commhub.store import imports as store
from commhub.store.contact_points import EMAIL, PHONE
from commhub.store.engine import SessionFactory

BATCH_ROWS: Final = 2000
BATCH_CHARS: Final = 4 * 1024 * 1024
PARALLEL_FROM_BYTES: Final = 4 * 1024 * 1024
"""Files smaller than this (some 30k rows) are parsed in a thread: starting processes costs more."""
MAX_WORKERS: Final = 4
SCRATCH_CHUNK: Final = 500
MAX_SOURCE_LENGTH: Final = 200
_NUMBERISH: Final = re.compile(r'^(="[+\-]?[\d\s().\-/]*"|[+\-]?[\d\s().\-/,;]*)$')
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Where a running import stands; ``fraction`` is 0..1 of the file read."""

    rows: int
    created: int
    merged: int
    rejected: int
    fraction: float


ProgressCallback = Callable[[ImportProgress], Awaitable[None]]


@dataclass(slots=True)
class ImportReport:
    """What an import did (or, for a dry run, would do)."""

    dry_run: bool
    rows: int = 0
    created: int = 0
    merged: int = 0
    rejected: int = 0
    blank: int = 0
    errors_path: Path | None = None
    seconds: float = 0.0

    def progress(self, fraction: float) -> ImportProgress:
        return ImportProgress(self.rows, self.created, self.merged, self.rejected, fraction)


@dataclass(slots=True)
class _Row:
    number: int
    cells: list[str]
    draft: PackedDraft


_Rejected = tuple[int, str, list[str]]


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where an interrupted import stopped: what its last committed batch had counted."""

    rows: int = 0
    created: int = 0
    merged: int = 0
    rejected: int = 0
    errors_bytes: int = 0


Checkpoint = Callable[[AsyncSession, ImportProgress, int], Awaitable[bool]]
"""Called in each batch's transaction, before its commit, with the new totals and the
length of the rejected-rows file; false means "stop": the batch is rolled back."""


class ImportStoppedError(Exception):
    """The import was told to stop (cancelled, or its turn was lost); committed batches stay."""


async def import_contacts(
    sessions: SessionFactory,
    source: Path,
    mapping: ImportMapping,
    *,
    region: str,
    dry_run: bool,
    errors_path: Path | None,
    import_id: int | None = None,
    progress: ProgressCallback | None = None,
    batch_rows: int = BATCH_ROWS,
    workers: int | None = None,
    resume: ResumePoint | None = None,
    checkpoint: Checkpoint | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ImportReport:
    """Import ``source`` (CSV or XLSX) through ``mapping``; return the report.

    ``region`` reads numbers written without a country code when the mapping
    names none. Raises :class:`~commhub.domain.imports.MappingError` when the
    mapping does not fit the file's header and
    :class:`~commhub.services.spreadsheets.SheetError` when the file cannot be
    read; both before anything is written (a file that turns unreadable
    half-way stops there, with the batches before it imported).

    ``workers`` parsing processes (default: one per CPU for files over
    :data:`PARALLEL_FROM_BYTES`, else none) validate rows while this process
    writes the previous batches: phone and e-mail validation is most of an
    import's CPU time.

    ``resume`` continues after the rows an earlier run committed: they are
    read again only to know which points the file already used (so a later
    duplicate is still "duplicate of row N"), and the rejected-rows file is
    cut back to what that run had committed. ``checkpoint`` writes the
    counters in the same transaction as the rows they count, and
    ``should_stop`` is asked before each batch; either one stopping raises
    :class:`ImportStoppedError`.
    """
    started = time.perf_counter()
    resume = resume or ResumePoint()
    report = ImportReport(
        dry_run=dry_run,
        rows=resume.rows,
        created=resume.created,
        merged=resume.merged,
        rejected=resume.rejected,
    )
    sheet = await asyncio.to_thread(open_sheet, source)
    try:
        reader = mapping.bind(sheet.header, region=region)
        consent_source = _consent_source(source, import_id)
        with (
            tempfile.TemporaryDirectory(prefix="commhub-import-") as scratch,
            _SeenPoints(Path(scratch) / "seen.db") as seen,
            _RejectedRows(
                errors_path, sheet.header, keep_bytes=resume.errors_bytes
            ) as rejected_file,
        ):
            companies = _Companies()
            skip = resume.rows
            async with _Parsers(_worker_count(source, workers)) as parsers:
                batches = parsers.parse(sheet, reader, batch_rows)
                async with contextlib.aclosing(batches):
                    async for raw, outcomes, fraction in batches:
                        if skip:
                            done = min(skip, len(raw))
                            await asyncio.to_thread(seen.claim, raw[:done], outcomes[:done])
                            skip -= done
                            raw, outcomes = raw[done:], outcomes[done:]
                            if not raw:
                                continue
                        if should_stop is not None and should_stop():
                            raise ImportStoppedError("stopped before the next batch")
                        accepted, rejected, blank = await asyncio.to_thread(
                            seen.claim, raw, outcomes
                        )
                        async with sessions() as session:
                            created, merged, ambiguous = await _store_batch(
                                session,
                                accepted,
                                companies,
                                dry_run=dry_run,
                                import_id=import_id,
                                consent_source=consent_source,
                            )
                            rejected = sorted(rejected + ambiguous, key=lambda r: r[0])
                            before = rejected_file.size
                            rejected_file.write(rejected)
                            step = ImportReport(
                                dry_run=dry_run,
                                rows=report.rows + len(raw),
                                created=report.created + created,
                                merged=report.merged + merged,
                                rejected=report.rejected + len(rejected),
                            ).progress(fraction)
                            if checkpoint is not None and not await checkpoint(
                                session, step, rejected_file.size
                            ):
                                await session.rollback()
                                rejected_file.cut(before)
                                raise ImportStoppedError("the import is no longer ours to run")
                            await session.commit()
                        report.rows = step.rows
                        report.blank += blank
                        report.created = step.created
                        report.merged = step.merged
                        report.rejected = step.rejected
                        if progress is not None:
                            await progress(step)
                        await asyncio.sleep(0)
            report.errors_path = rejected_file.path if rejected_file.written else None
    finally:
        sheet.close()
    report.seconds = time.perf_counter() - started
    return report


_Raw = list[tuple[int, list[str]]]
_Outcome = PackedDraft | str | None


def _worker_count(source: Path, workers: int | None) -> int:
    if workers is not None:
        return max(workers, 0)
    cpus = os.cpu_count() or 1
    try:
        large = source.stat().st_size >= PARALLEL_FROM_BYTES
    except OSError:
        large = False
    # One core stays with this process, which writes while the workers parse.
    return min(cpus - 1, MAX_WORKERS) if large and cpus > 1 else 0


class _Parsers:
    """Validates batches of rows in worker processes (or a thread), in file order.

    A few batches are kept in flight so the workers parse ahead while the
    caller writes; the window bounds memory whatever the file's size.
    """

    def __init__(self, workers: int) -> None:
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            self._pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
        self._window = 2 * workers + 1 if workers else 1

    async def __aenter__(self) -> _Parsers:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pool is not None:
            await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)

    async def parse(
        self, sheet: Sheet, reader: RowReader, size: int
    ) -> AsyncGenerator[tuple[_Raw, list[_Outcome], float], None]:
        loop = asyncio.get_running_loop()
        pending: deque[tuple[_Raw, asyncio.Future[list[_Outcome]], float]] = deque()
        exhausted = False
        while True:
            while not exhausted and len(pending) < self._window:
                raw = await asyncio.to_thread(_take, sheet, size)
                if not raw:
                    exhausted = True
                    break
                cells = [row for _, row in raw]
                if self._pool is None:
                    future = loop.run_in_executor(None, read_rows, reader, cells)
                else:
                    future = loop.run_in_executor(self._pool, read_rows, reader, cells)
                pending.append((raw, future, sheet.fraction_read))
            if not pending:
                return
            raw, future, fraction = pending.popleft()
            yield raw, await future, fraction


def _take(sheet: Sheet, size: int) -> _Raw:
    """Up to ``size`` rows, fewer once they hold :data:`BATCH_CHARS` (memory stays bounded)."""
    taken: _Raw = []
    chars = 0
    for row in itertools.islice(sheet.rows, size):
        taken.append(row)
        chars += sum(map(len, row[1]))
        if chars >= BATCH_CHARS:
            break
    return taken


async def _store_batch(
    session: AsyncSession,
    rows: list[_Row],
    companies: _Companies,
    *,
    dry_run: bool,
    import_id: int | None,
    consent_source: str,
) -> tuple[int, int, list[_Rejected]]:
    """Match a batch against the hub and (unless a dry run) write it; the caller commits."""
    if not rows:
        return 0, 0, []
    owners = await store.point_owners(
        session,
        (e164 for row in rows for e164, _ in row.draft.phones),
        (e for row in rows for e in row.draft.emails),
    )
    new: list[_Row] = []
    merges: dict[int, list[_Row]] = {}
    ambiguous: list[_Rejected] = []
    for row in rows:
        ids: set[int] = set()
        for point in row.draft.points:
            ids |= owners.get(point, set())
        if not ids:
            new.append(row)
        elif len(ids) == 1:
            merges.setdefault(ids.pop(), []).append(row)
        else:
            listed = ", ".join(str(i) for i in sorted(ids))
            reason = f"matches {len(ids)} existing contacts ({listed}): merge them first"
            ambiguous.append((row.number, reason, row.cells))
    if not dry_run:
        await _write(
            session, new, merges, companies, import_id=import_id, consent_source=consent_source
        )
    return len(new), sum(len(m) for m in merges.values()), ambiguous


async def _write(
    session: AsyncSession,
    new: list[_Row],
    merges: dict[int, list[_Row]],
    companies: _Companies,
    *,
    import_id: int | None,
    consent_source: str,
) -> None:
    drafts = [row.draft for row in new] + [r.draft for rows in merges.values() for r in rows]
    spellings: dict[str, str] = {}
    for draft in drafts:
        if draft.company:
            spellings.setdefault(name_key(draft.company), draft.company)
    company_ids = await companies.ids(session, spellings)
    new_ids = await store.insert_contacts(
        session,
        [
            (d.name, name_key(d.name), _company(company_ids, d), dict(d.extra), import_id)
            for d in (row.draft for row in new)
        ],
    )
    targets: list[tuple[int, PackedDraft]] = list(zip(new_ids, (r.draft for r in new), strict=True))
    states = await store.contact_states(session, merges)
    changed: list[store.ContactState] = []
    for contact_id, rows in merges.items():
        state = states[contact_id]
        if any([_fill(state, row.draft, company_ids) for row in rows]):
            changed.append(state)
        targets.extend((contact_id, row.draft) for row in rows)
    await store.update_contacts(session, changed)
    await store.add_points(
        session,
        [(cid, PHONE, e164, key) for cid, d in targets for e164, key in d.phones]
        + [(cid, EMAIL, e, e) for cid, d in targets for e in d.emails],
    )
    await store.add_tags(session, [(cid, tag) for cid, d in targets for tag in d.tags])
    await store.add_consents(
        session,
        [(cid, *consent) for cid, d in targets for consent in d.consents],
        consent_source,
    )


def _fill(state: store.ContactState, draft: PackedDraft, company_ids: dict[str, int]) -> bool:
    """Fill what the existing contact lacks from a merged row; true if anything changed."""
    changed = False
    if not state.name.strip() and draft.name:
        state.name = draft.name
        changed = True
    if state.company_id is None and draft.company:
        state.company_id = _company(company_ids, draft)
        changed = True
    for key, value in draft.extra.items():
        if not state.extra.get(key):
            state.extra[key] = value
            changed = True
    return changed


def _company(company_ids: dict[str, int], draft: PackedDraft) -> int | None:
    return company_ids.get(name_key(draft.company)) if draft.company else None


def _consent_source(source: Path, import_id: int | None) -> str:
    label = f"import #{import_id}: {source.name}" if import_id else f"import: {source.name}"
    return label[:MAX_SOURCE_LENGTH]


class _Companies:
    """Company ids already resolved by earlier batches of this import.

    A prospect base names the same few thousand companies over and over;
    without this every batch upserted and re-read them all. Bounded: when
    full it starts over, costing one lookup per company again.
    """

    LIMIT: Final = 100_000

    def __init__(self) -> None:
        self._known: dict[str, int] = {}

    async def ids(self, session: AsyncSession, spellings: dict[str, str]) -> dict[str, int]:
        """Ids by ``name_key`` for ``spellings`` (key → name as written); new ones are created."""
        missing = {key: name for key, name in spellings.items() if key not in self._known}
        if missing and len(self._known) + len(missing) > self.LIMIT:
            self._known.clear()
            missing = dict(spellings)
        if missing:
            self._known.update(await store.company_ids(session, missing))
        return self._known


class _SeenPoints:
    """Points used by earlier rows of the file, in a scratch SQLite file (flat memory)."""

    def __init__(self, path: Path) -> None:
        # Used from one worker thread at a time, never concurrently.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("PRAGMA cache_size=-16000")
        self._db.execute("CREATE TABLE seen (point TEXT PRIMARY KEY, row INTEGER) WITHOUT ROWID")

    def __enter__(self) -> _SeenPoints:
        return self

    def __exit__(self, *exc: object) -> None:
        self._db.close()

    def claim(self, raw: _Raw, outcomes: list[_Outcome]) -> tuple[list[_Row], list[_Rejected], int]:
        """Split a parsed batch: rows to import, rows rejected (with why), blank rows.

        A row whose phone or e-mail an earlier row already used is a duplicate.
        """
        rows: list[_Row] = []
        rejected: list[_Rejected] = []
        blank = 0
        for (number, cells), outcome in zip(raw, outcomes, strict=True):
            if outcome is None:
                blank += 1
            elif isinstance(outcome, str):
                rejected.append((number, outcome, cells))
            else:
                rows.append(_Row(number, cells, outcome))
        earlier = self._lookup([point for row in rows for point in row.draft.points])
        claimed: dict[str, int] = {}
        kept: list[_Row] = []
        for row in rows:
            points = row.draft.points
            first = next((p for p in points if p in earlier or p in claimed), None)
            if first is not None:
                where = earlier.get(first) or claimed[first]
                what = "e-mail" if "@" in first else "phone"
                reason = f"duplicate of row {where} (same {what} {first})"
                rejected.append((row.number, reason, row.cells))
                continue
            for point in points:
                claimed[point] = row.number
            kept.append(row)
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO seen VALUES (?, ?)", claimed.items())
        self._db.execute("COMMIT")
        return kept, rejected, blank

    def _lookup(self, points: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(points), SCRATCH_CHUNK):
            chunk = points[start : start + SCRATCH_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT point, row FROM seen WHERE point IN ({marks})", chunk)
            found.update(rows)
        return found


class _RejectedRows:
    """The errors file: ``row``, ``error``, then the row's original columns.

    Opened on the first rejection. Cells that a spreadsheet program would run
    as a formula are written with a leading ``'`` (phone numbers such as
    ``+7 916…`` are left alone), the header's too. Each batch's rows are
    flushed before the batch commits, and :attr:`size` is what the commit
    records: a resumed import cuts the file back to it, so a row written
    by a batch that never committed is not listed twice.
    """

    def __init__(self, path: Path | None, header: Sequence[str], *, keep_bytes: int = 0) -> None:
        self.path = path
        self.written = False
        self.size = 0
        self._header = list(header)
        self._file: IO[str] | None = None
        self._writer: Any = None
        if path is None:
            return
        if keep_bytes > 0 and path.exists():
            with path.open("r+b") as existing:
                existing.truncate(keep_bytes)
            self._open(path, "a", "utf-8")
            self.size = keep_bytes
        else:
            path.unlink(missing_ok=True)

    def __enter__(self) -> _RejectedRows:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()

    def _open(self, path: Path, mode: str, encoding: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open(mode, encoding=encoding, newline="")
        self._writer = csv.writer(self._file)
        self.written = True

    def write(self, rejected: list[_Rejected]) -> None:
        if self.path is None or not rejected:
            return
        if self._writer is None:
            self._open(self.path, "w", "utf-8-sig")
            assert self._writer is not None
            self._writer.writerow(["row", "error", *(_safe_cell(h) for h in self._header)])
        self._writer.writerows(
            [str(number), reason, *(_safe_cell(c) for c in cells)]
            for number, reason, cells in rejected
        )
        self._sync()

    def cut(self, size: int) -> None:
        """Drop what was written after ``size`` bytes (a batch that did not commit)."""
        if self._file is None:
            return
        self._file.flush()
        os.truncate(self._file.fileno(), size)
        self._file.seek(0, os.SEEK_END)
        self.size = size

    def _sync(self) -> None:
        assert self._file is not None
        self._file.flush()
        self.size = os.fstat(self._file.fileno()).st_size


def _safe_cell(value: str) -> str:
    if value.startswith(_FORMULA_START) and not _NUMBERISH.match(value):
        return "'" + value
    return value
