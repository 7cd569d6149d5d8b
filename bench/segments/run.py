"""Benchmark: a segment's live count on a million contacts and ten million interactions.

    .venv/bin/python bench/segments/run.py [--backend sqlite|postgres|both]
        [--contacts 1000000] [--rows 10000000] [--runs 20] [--rebuild] [--explain]

Times the count the segment builder's preview shows —
``store.segments.count(session, store.segments.members(rules))`` on a real
``AsyncSession`` — for three representative rule trees, each call beside a
hand-written SQL count of the same rule on the same session (the baseline),
and checks both give the same number. Target: p99 <= 1 s. The database is kept
in ``bench/data/`` and reused; ``--rebuild`` regenerates it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from load import END_UNIX, Shape, fill_postgres, fill_sqlite
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable

from commhub.domain.segments import read_rules
from commhub.models import UTCDateTime
from commhub.store import segments
from commhub.store.engine import open_engine, session_factory
from commhub.store.migrate import upgrade
from databases import BACKENDS, BenchDatabase, bench_database, drop, is_built, mark_built, recreate
from latency import Comparison, Samples, interleaved, report

TARGET_P99_MS: Final = 1000.0
END: Final = datetime.fromtimestamp(END_UNIX, UTC)


def _day(days_before_end: int) -> str:
    return (END - timedelta(days=days_before_end)).date().isoformat()


@dataclass(frozen=True, slots=True)
class Case:
    label: str
    rules: dict[str, Any]
    raw: str
    """The same rule as hand-written SQL; ``{city}`` is the backend's JSON lookup."""


CASES: Final = (
    Case(
        "(a) city, tag and e-mail consent",
        {
            "all": [
                {"field": "city", "op": "equals", "value": "Moscow"},
                {"field": "tag", "op": "has", "value": "tag-7"},
                {"field": "consent", "op": "granted", "value": {"channel": "email"}},
            ]
        },
        "SELECT count(*) FROM contacts c WHERE c.merged_into_id IS NULL "
        "AND {city} = 'Moscow' "
        "AND c.id IN (SELECT ct.contact_id FROM contact_tags ct JOIN tags t "
        "ON t.id = ct.tag_id WHERE t.name = 'tag-7') "
        "AND c.id IN (SELECT contact_id FROM consents WHERE channel = 'email' "
        "AND purpose = 'marketing' AND granted)",
    ),
    Case(
        "(b) e-mail in or missed call, no open deal",
        {
            "all": [
                {
                    "any": [
                        {
                            "field": "interaction",
                            "op": "any_after",
                            "value": {"channel": "email", "direction": "in", "date": _day(90)},
                        },
                        {"field": "missed_call", "op": "any_after", "value": _day(30)},
                    ]
                },
                {"not": {"field": "deal", "op": "open"}},
            ]
        },
        "SELECT count(*) FROM contacts c WHERE c.merged_into_id IS NULL "
        "AND c.id IN (SELECT contact_id FROM interactions WHERE channel = 'email' "
        "AND direction = 'in' AND occurred_at >= :d90 "
        "UNION SELECT contact_id FROM missed_calls WHERE occurred_at >= :d30) "
        "AND NOT EXISTS (SELECT 1 FROM deals d WHERE d.contact_id = c.id "
        "AND d.closed_at IS NULL)",
    ),
    Case(
        "(c) 3+ calls, no campaign, (consent|owner|city)",
        {
            "all": [
                {
                    "field": "interaction",
                    "op": "count_at_least",
                    "value": {"channel": "call", "since": _day(182), "count": 3},
                },
                {"not": {"field": "campaign", "op": "received", "value": 1}},
                {
                    "any": [
                        {"field": "consent", "op": "granted", "value": {"channel": "sms"}},
                        {"field": "owner", "op": "equals", "value": 3},
                        {"field": "city", "op": "equals", "value": "Kazan"},
                    ]
                },
            ]
        },
        "SELECT count(*) FROM contacts c WHERE c.merged_into_id IS NULL "
        "AND c.id IN (SELECT contact_id FROM interactions WHERE channel = 'call' "
        "AND occurred_at >= :d182 GROUP BY contact_id HAVING count(*) >= 3) "
        "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.contact_id = c.id "
        "AND o.campaign_id = 1 AND o.state IN ('sent', 'dismissed')) "
        "AND (c.id IN (SELECT contact_id FROM consents WHERE channel = 'sms' "
        "AND purpose = 'marketing' AND granted) OR c.owner_id = 3 OR {city} = 'Kazan')",
    ),
)


def raw_statement(case: Case, backend: str) -> Any:
    city = "json_extract(c.extra, '$.city')" if backend == "sqlite" else "(c.extra ->> 'city')"
    statement = text(case.raw.format(city=city))
    names = [name for name in ("d90", "d30", "d182") if f":{name}" in case.raw]
    return statement.bindparams(*(bindparam(name, type_=UTCDateTime()) for name in names))


RAW_PARAMS: Final = {
    "d90": datetime.fromisoformat(_day(90)).replace(tzinfo=UTC),
    "d30": datetime.fromisoformat(_day(30)).replace(tzinfo=UTC),
    "d182": datetime.fromisoformat(_day(182)).replace(tzinfo=UTC),
}


async def hub_count(session: AsyncSession, case: Case) -> int:
    """What the preview endpoint does: read the rules, count their members."""
    return await segments.count(session, segments.members(read_rules(case.rules)))


async def raw_count(session: AsyncSession, case: Case, backend: str) -> int:
    params = {name: value for name, value in RAW_PARAMS.items() if f":{name}" in case.raw}
    found = await session.scalar(raw_statement(case, backend), params)
    return int(found or 0)


class Explain(Executable, ClauseElement):
    """``EXPLAIN [QUERY PLAN]`` of a statement, its parameters bound as the statement's own."""

    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(Explain)
def _explain(element: Explain, compiler: Any, **kw: Any) -> str:
    prefix = "EXPLAIN QUERY PLAN " if compiler.dialect.name == "sqlite" else "EXPLAIN "
    return prefix + str(compiler.process(element.statement, **kw))


async def explain(session: AsyncSession, case: Case) -> None:
    """The plan of the compiled count, so a slow rule shows its cause."""
    statement = select(func.count()).select_from(
        segments.members(read_rules(case.rules)).subquery()
    )
    rows = (await session.execute(Explain(statement))).all()
    print(f"  plan of {case.label}:")
    for row in rows:
        print(f"    {row[-1]}")


async def ensure_loaded(database: BenchDatabase, shape: Shape, rebuild: bool) -> None:
    if is_built(database) and not rebuild:
        print(f"  reusing {database.url} ({database.marker.read_text().strip()})")
        engine = open_engine(database.url)
        try:
            await upgrade(engine)  # a migration added since the build (an index) applies now
        finally:
            await engine.dispose()
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
    shape = Shape(contacts=args.contacts, rows=args.rows)
    database = bench_database(f"segments-{args.contacts}", backend, args.rows)
    print(f"[{backend}] {database.url}")
    await ensure_loaded(database, shape, args.rebuild)
    engine = open_engine(database.url)
    results = []
    try:
        async with session_factory(engine)() as session:
            for case in CASES:
                if args.explain:
                    await explain(session, case)
                hub, raw = await hub_count(session, case), await raw_count(session, case, backend)
                agreement = "same" if hub == raw else "DIFFERENT"
                print(f"  {case.label}: hub counts {hub}, raw SQL {raw} ({agreement})")
                measured, baseline = Samples("hub count"), Samples("raw SQL")
                for turn in range(args.runs):
                    await interleaved(
                        measured,
                        baseline,
                        partial(hub_count, session, case),
                        partial(raw_count, session, case, backend),
                        turn=turn,
                    )
                results.append(Comparison(case.label, measured, baseline, TARGET_P99_MS))
    finally:
        await engine.dispose()
    if args.drop:
        await drop(database)
    report(results)
    return results


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "postgresql", "both"], default="both")
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=10_000_000, help="interactions")
    parser.add_argument("--runs", type=int, default=20, help="timed counts per rule")
    parser.add_argument("--explain", action="store_true", help="print each compiled plan")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the database")
    parser.add_argument("--drop", action="store_true", help="delete the database afterwards")
    args = parser.parse_args()
    backend = "postgres" if args.backend == "postgresql" else args.backend
    backends = BACKENDS if backend == "both" else (backend,)
    results = [result for name in backends for result in await run_backend(name, args)]
    return 0 if all(result.met() for result in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
