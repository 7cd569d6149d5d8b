"""Benchmark: the funnel report and the kanban board on a million deals.

    .venv/bin/python bench/funnel/run.py [--backend sqlite|postgres|both] [--deals N]

(a) ``services.funnel.funnel_report`` for one year (2025) and the default
pipeline, beside the raw aggregate over the stage history the report would
need without its funnel rows (one GROUP BY over ``stage_changes`` for that
year and pipeline); target p99 <= 200 ms.
(b) ``services.deal_views.board_column`` (count, sums per currency and the first
20 cards) for the stage holding about a tenth of the deals, beside a plain
``SELECT … ORDER BY updated_at DESC LIMIT 20`` on the same stage; target
p99 <= 50 ms. Data: see ``load.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from load import fill
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from commhub.models import Deal, UTCDateTime
from commhub.services.database import Database
from commhub.services.deal_views import board_column
from commhub.services.deals import SYSTEM
from commhub.services.funnel import funnel_report
from commhub.store.deals import DealFilter
from commhub.store.engine import open_engine, session_factory
from commhub.store.migrate import upgrade
from databases import BACKENDS, BenchDatabase, bench_database, drop, is_built, mark_built, recreate
from latency import Comparison, Samples, interleaved, report

FUNNEL_TARGET_MS: Final = 200.0
BOARD_TARGET_MS: Final = 50.0
YEAR: Final = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
PIPELINE: Final = 1

RAW_FUNNEL = text(
    "SELECT sc.to_stage_id, count(DISTINCT sc.deal_id) FROM stage_changes sc "
    "JOIN deals d ON d.id = sc.deal_id "
    "WHERE d.pipeline_id = :pipeline AND sc.changed_at >= :since AND sc.changed_at < :until "
    "GROUP BY sc.to_stage_id"
).bindparams(bindparam("since", type_=UTCDateTime()), bindparam("until", type_=UTCDateTime()))
"""What reached each stage in the year, straight from the history (no skips, no
conversions, no money: the least a report over history has to read)."""

_ALL_COLUMNS = ", ".join(column.name for column in Deal.__table__.columns)
RAW_BOARD = text(
    f"SELECT {_ALL_COLUMNS} FROM deals WHERE stage_id = :stage "
    "ORDER BY updated_at DESC, id DESC LIMIT 20"
)


async def ensure_loaded(database: BenchDatabase, deals: int, rebuild: bool) -> None:
    if is_built(database) and not rebuild:
        print(f"  reusing {database.url} ({database.marker.read_text().strip()})")
        return
    await recreate(database)
    engine = open_engine(database.url)
    try:
        await upgrade(engine)
        summary = await fill(engine, deals)
    finally:
        await engine.dispose()
    print(f"  {summary}")
    mark_built(database, summary)


async def busiest_stage(engine: AsyncEngine, wanted: int) -> tuple[int, int]:
    """The stage whose number of standing deals is nearest ``wanted``, and that number."""
    async with session_factory(engine)() as session:
        rows = (
            await session.execute(select(Deal.stage_id, func.count()).group_by(Deal.stage_id))
        ).all()
    stage_id, count = min(rows, key=lambda row: abs(row[1] - wanted))
    return int(stage_id), int(count)


async def explain(engine: AsyncEngine, backend: str, stage_id: int) -> None:
    """The plans of the report's main aggregate and the board's sums, printed once."""
    prefix = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN "
    statements = {
        "funnel counts (the year's whole days)": (
            "SELECT stage_id, currency, sum(reached), sum(moved_on), sum(won), sum(amount) "
            "FROM funnel_days WHERE pipeline_id = :pipeline AND day >= :first "
            "AND day < :end GROUP BY stage_id, currency"
        ),
        "board sums": (
            "SELECT currency, count(*), sum(amount) FROM deals WHERE stage_id = :stage "
            "GROUP BY currency"
        ),
    }
    params = {
        "pipeline": PIPELINE,
        "first": YEAR[0].date(),
        "end": YEAR[1].date(),
        "stage": stage_id,
    }
    async with engine.connect() as connection:
        for label, sql in statements.items():
            statement = text(prefix + sql)
            rows = (await connection.execute(statement, params)).all()
            print(f"  plan of {label}:", " / ".join(str(row[-1]).strip() for row in rows))


async def report_once(db: Database) -> int:
    found = await funnel_report(db, pipeline_id=PIPELINE, since=YEAR[0], until=YEAR[1])
    return sum(stage.reached for stage in found.funnel.stages)


async def raw_funnel_once(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        rows = await connection.execute(
            RAW_FUNNEL, {"pipeline": PIPELINE, "since": YEAR[0], "until": YEAR[1]}
        )
        return sum(int(n) for _, n in rows.all())


async def board_once(db: Database, stage_id: int) -> list[int]:
    column, _ = await board_column(db, stage_id, DealFilter(), SYSTEM, after=None, limit=20)
    return [deal.id for deal in column.deals]


async def raw_board_once(engine: AsyncEngine, stage_id: int) -> list[int]:
    async with engine.connect() as connection:
        rows = await connection.execute(RAW_BOARD, {"stage": stage_id})
        return [row.id for row in rows.all()]


async def measure(engine: AsyncEngine, runs: int, stage_id: int) -> list[Comparison]:
    db = session_factory(engine)
    funnel, history = Samples("funnel_report"), Samples("GROUP BY history")
    board, plain = Samples("board_column"), Samples("plain SELECT")
    # Warm both sides once (the figures are for a warm cache, as for every benchmark).
    print(
        f"  funnel rows reached in the year: {await report_once(db)}, "
        f"history rows: {await raw_funnel_once(engine)}"
    )
    for turn in range(runs):
        await interleaved(
            funnel,
            history,
            partial(report_once, db),
            partial(raw_funnel_once, engine),
            turn=turn,
        )
    await board_once(db, stage_id)
    differing = 0
    for turn in range(runs * 10):
        cards, raw = await interleaved(
            board,
            plain,
            partial(board_once, db, stage_id),
            partial(raw_board_once, engine, stage_id),
            turn=turn,
        )
        differing += cards != raw
    if differing:
        print(f"  !! {differing} board pages differ from the plain SELECT")
    return [
        Comparison("funnel report, a year, one pipeline", funnel, history, FUNNEL_TARGET_MS),
        Comparison("board column, first 20 cards", board, plain, BOARD_TARGET_MS),
    ]


async def run_backend(backend: str, args: argparse.Namespace) -> list[Comparison]:
    database = bench_database("funnel", backend, args.deals)
    print(f"[{backend}] {database.url}")
    await ensure_loaded(database, args.deals, args.rebuild)
    engine = open_engine(database.url)
    try:
        stage_id, count = await busiest_stage(engine, args.deals // 10)
        print(f"  board stage {stage_id}: {count} deals standing in it")
        await explain(engine, backend, stage_id)
        results = await measure(engine, args.runs, stage_id)
    finally:
        await engine.dispose()
    if args.drop:
        await drop(database)
    report(results)
    return results


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument(
        "--runs", type=int, default=50, help="timed reports (board pages: ten times as many)"
    )
    parser.add_argument("--rebuild", action="store_true", help="regenerate the database")
    parser.add_argument("--drop", action="store_true", help="delete the database afterwards")
    args = parser.parse_args()
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    results = [result for backend in backends for result in await run_backend(backend, args)]
    return 0 if all(result.met() for result in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
