"""Benchmark: the client card's timeline page on ten million interactions.

    .venv/bin/python bench/timeline/run.py [--backend sqlite|postgres|both] [--rows N]

Times ``commhub.store.interactions.timeline`` (a page of 50, newest first) for
first pages and for deep keyset pages reached through ``cursor_after``, each
call beside the raw SQL of the same page on the same session. Target: p99 <= 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from load import Shape, fill_postgres, fill_sqlite
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.pagination import Cursor
from commhub.models import Interaction, UTCDateTime
from commhub.store.engine import open_engine, session_factory
from commhub.store.interactions import cursor_after, timeline
from commhub.store.migrate import upgrade
from databases import BACKENDS, BenchDatabase, bench_database, drop, is_built, mark_built, recreate
from latency import Comparison, Samples, interleaved, report

TARGET_P99_MS: Final = 5.0
PAGE: Final = 50
WARMUP: Final = 300

_ALL_COLUMNS = ", ".join(column.name for column in Interaction.__table__.columns)
RAW_FIRST_PAGE = text(
    f"SELECT {_ALL_COLUMNS} FROM interactions WHERE contact_id = :contact "
    "ORDER BY occurred_at DESC, id DESC LIMIT :limit"
)
RAW_NEXT_PAGE = text(
    f"SELECT {_ALL_COLUMNS} FROM interactions WHERE contact_id = :contact "
    "AND (occurred_at, id) < (:at, :id) ORDER BY occurred_at DESC, id DESC LIMIT :limit"
).bindparams(bindparam("at", type_=UTCDateTime()))
"""The same pages as plain SQL returning tuples: what the index alone costs."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    contact_id: int
    after: Cursor | None


async def walk(session: AsyncSession, contact_id: int, pages: int) -> list[PageRequest]:
    """Follow ``cursor_after`` from the first page down, keeping each page's request."""
    requests = [PageRequest(contact_id, None)]
    cursor: Cursor | None = None
    for _ in range(pages):
        rows = await timeline(session, contact_id, after=cursor, limit=PAGE)
        cursor = cursor_after(rows, PAGE)
        session.expunge_all()
        if cursor is None:
            break
        requests.append(PageRequest(contact_id, cursor))
    return requests


async def service_page(session: AsyncSession, request: PageRequest) -> list[int]:
    rows = await timeline(session, request.contact_id, after=request.after, limit=PAGE)
    return [row.id for row in rows]


async def raw_page(session: AsyncSession, request: PageRequest) -> list[int]:
    params: dict[str, object]
    if request.after is None:
        params = {"contact": request.contact_id, "limit": PAGE}
        result = await session.execute(RAW_FIRST_PAGE, params)
    else:
        params = {
            "contact": request.contact_id,
            "at": request.after.occurred_at,
            "id": request.after.id,
            "limit": PAGE,
        }
        result = await session.execute(RAW_NEXT_PAGE, params)
    return [row.id for row in result.all()]


async def measure(session: AsyncSession, label: str, requests: list[PageRequest]) -> Comparison:
    """timeline() against the raw SQL of the same page, call by call; checks they agree."""
    measured, baseline = Samples("timeline"), Samples("raw SQL")
    differing = 0
    for turn, request in enumerate(requests):
        service_ids, raw_ids = await interleaved(
            measured,
            baseline,
            partial(service_page, session, request),
            partial(raw_page, session, request),
            turn=turn,
        )
        session.expunge_all()
        differing += service_ids != raw_ids
    if differing:
        print(f"  !! {label}: {differing} pages differ between timeline() and the raw SQL")
    return Comparison(label, measured, baseline, TARGET_P99_MS)


async def explain(session: AsyncSession, backend: str, request: PageRequest) -> None:
    """The plan of the keyset page, printed once so a regression shows its cause."""
    assert request.after is not None
    params = {
        "contact": request.contact_id,
        "at": request.after.occurred_at,
        "id": request.after.id,
        "limit": PAGE,
    }
    prefix = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN "
    statement = text(prefix + str(RAW_NEXT_PAGE)).bindparams(bindparam("at", type_=UTCDateTime()))
    rows = (await session.execute(statement, params)).all()
    print("  plan:", " / ".join(str(row[-1]).strip() for row in rows))


async def ensure_loaded(database: BenchDatabase, shape: Shape, rebuild: bool) -> None:
    if is_built(database) and not rebuild:
        print(f"  reusing {database.url} ({database.marker.read_text().strip()})")
        return
    await recreate(database)
    engine = open_engine(database.url)
    try:
        await upgrade(engine)
        if database.is_sqlite:
            await engine.dispose()
            summary = await asyncio.to_thread(fill_sqlite, database.sqlite_path, shape)
        else:
            summary = await fill_postgres(engine, shape)
    finally:
        await engine.dispose()
    print(f"  {summary}")
    mark_built(database, summary)


async def run_backend(backend: str, args: argparse.Namespace) -> list[Comparison]:
    shape = Shape(rows=args.rows)
    database = bench_database("timeline", backend, args.rows)
    print(f"[{backend}] {database.url}")
    await ensure_loaded(database, shape, args.rebuild)
    rng = random.Random(11)
    engine = open_engine(database.url)
    try:
        async with session_factory(engine)() as session:
            deep: list[PageRequest] = []
            for heavy in range(1, shape.heavy + 1):
                deep += (await walk(session, heavy, args.walk))[1:]
            await explain(session, backend, deep[len(deep) // 2])
            print(f"  walked {len(deep)} keyset pages of {shape.heavy} heavy contacts")
            ordinary = range(shape.heavy + 1, shape.contacts + 1)
            first = [
                PageRequest(contact_id, None)
                for contact_id in rng.sample(ordinary, min(args.pages, len(ordinary)))
            ]
            heavy_first = [PageRequest(1 + n % shape.heavy, None) for n in range(args.pages // 10)]
            deep_sample = rng.sample(deep, min(args.pages, len(deep)))
            for request in first:
                # Warm cache, as for the heavy contacts the walk has already read.
                await raw_page(session, request)
            await measure(session, "warm-up", first[:WARMUP])
            cases = [
                ("first page, ordinary contact", first),
                (f"first page, heavy contact ({shape.heavy_rows} rows)", heavy_first),
                ("deep keyset page, heavy contact", deep_sample),
            ]
            results = [await measure(session, label, requests) for label, requests in cases]
    finally:
        await engine.dispose()
    if args.drop:
        await drop(database)
    report(results)
    return results


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--pages", type=int, default=5_000, help="timed pages per case")
    parser.add_argument(
        "--walk", type=int, default=5_000, help="pages to follow down each heavy contact"
    )
    parser.add_argument("--rebuild", action="store_true", help="regenerate the database")
    parser.add_argument("--drop", action="store_true", help="delete the database afterwards")
    args = parser.parse_args()
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    results = [result for backend in backends for result in await run_backend(backend, args)]
    return 0 if all(result.met() for result in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
