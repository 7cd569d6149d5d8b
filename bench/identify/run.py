"""Benchmark: identify (the screen-pop lookup) on a million contacts.

    .venv/bin/python bench/identify/run.py [--backend sqlite|postgres|both] [--contacts N]

Times ``commhub.services.identify.identify`` for numbers given in E.164, in
the forms trunks and gateways send, and for unknown numbers, each call beside
the raw indexed SELECT it stands on, on the same session. Target: p99 <= 2 ms
and <= 3x the raw SELECT.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from load import fill
from phonebook import (
    HOME_REGION,
    non_canonical_forms,
    number_of,
    stored_numbers,
    unknown_numbers,
)
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.phones import read_number
from commhub.services.identify import Verdict, identify
from commhub.store.engine import SessionFactory, open_engine, session_factory
from commhub.store.migrate import upgrade
from databases import (
    BACKENDS,
    BenchDatabase,
    bench_database,
    drop,
    is_built,
    mark_built,
    recreate,
)
from latency import Comparison, Samples, interleaved, report

TARGET_P99_MS: Final = 2.0
MAX_RATIO: Final = 3.0
WARMUP: Final = 500

RAW_BY_MATCH_KEY = text(
    "SELECT contact_id, value FROM contact_points WHERE kind = 'phone' AND match_key = :key"
).bindparams(bindparam("key"))
"""The one indexed query identify stands on, without the service around it."""


@dataclass(frozen=True, slots=True)
class Lookup:
    """One timed call: what the PBX sends, and the contact it must find (if any)."""

    address: str
    region: str
    match_key: str
    expected: int | None


async def sample_stored(session: AsyncSession, count: int, rng: random.Random) -> list[Lookup]:
    """Random stored numbers (E.164) and a contact holding each, read back from the database."""
    rows = await stored_numbers(session, count, rng)
    lookups = [Lookup(value, HOME_REGION, key, owner) for value, key, owner in rows]
    rng.shuffle(lookups)
    return lookups


def rewritten(stored: list[Lookup], rng: random.Random) -> list[Lookup]:
    """The same numbers as trunks write them: 8…, 00…, 810…, brackets, no country code."""
    lookups = []
    for lookup in stored:
        address, region = rng.choice(non_canonical_forms(number_of(lookup.address)))
        key = read_number(address, region).match_key
        assert key == lookup.match_key, f"{address!r} in {region} reads as another number"
        lookups.append(Lookup(address, region, key, lookup.expected))
    return lookups


async def unknown_lookups(session: AsyncSession, count: int, rng: random.Random) -> list[Lookup]:
    """Valid numbers whose match key no contact has."""
    return [
        Lookup(n.phone.e164, HOME_REGION, n.phone.match_key, None)
        for n in await unknown_numbers(session, count, rng)
    ]


async def service_lookup(session: AsyncSession, lookup: Lookup) -> bool:
    """identify() once; whether it answered what the lookup expects."""
    identity = await identify(session, lookup.address, region=lookup.region)
    if lookup.expected is None:
        return identity.verdict is Verdict.UNKNOWN
    return lookup.expected in identity.contact_ids


async def raw_lookup(session: AsyncSession, lookup: Lookup) -> bool:
    return bool((await session.execute(RAW_BY_MATCH_KEY, {"key": lookup.match_key})).all()) or (
        lookup.expected is None
    )


def in_own_session(
    sessions: SessionFactory, call: Callable[[AsyncSession, Lookup], Awaitable[bool]]
) -> Callable[[AsyncSession, Lookup], Awaitable[bool]]:
    """``call`` in a session of its own, as a screen-pop request runs it (pool checkout and all)."""

    async def own(_: AsyncSession, lookup: Lookup) -> bool:
        async with sessions() as session:
            return await call(session, lookup)

    return own


async def measure(
    session: AsyncSession,
    label: str,
    lookups: list[Lookup],
    *,
    service: Callable[[AsyncSession, Lookup], Awaitable[bool]] = service_lookup,
    raw: Callable[[AsyncSession, Lookup], Awaitable[bool]] = raw_lookup,
    name: str = "identify",
) -> Comparison:
    """identify() against the raw SELECT, call by call; checks every answer on the way."""
    measured, baseline = Samples(name), Samples("raw SELECT")
    wrong = 0
    for turn, lookup in enumerate(lookups):
        right, _ = await interleaved(
            measured,
            baseline,
            partial(service, session, lookup),
            partial(raw, session, lookup),
            turn=turn,
        )
        wrong += not right
    if wrong:
        print(f"  !! {label}: {wrong} of {len(lookups)} lookups gave the wrong answer")
    return Comparison(label, measured, baseline, TARGET_P99_MS, MAX_RATIO)


async def explain(session: AsyncSession, backend: str) -> None:
    """The plan of identify's query, printed once so a regression shows its cause."""
    key = {"key": "161234567"}
    if backend == "sqlite":
        sql = "EXPLAIN QUERY PLAN " + str(RAW_BY_MATCH_KEY) + " ORDER BY contact_id"
        rows = (await session.execute(text(sql), key)).all()
        print("  plan:", "; ".join(str(row[-1]) for row in rows))
    else:
        sql = "EXPLAIN " + str(RAW_BY_MATCH_KEY) + " ORDER BY contact_id"
        rows = (await session.execute(text(sql), key)).all()
        print("  plan:", " / ".join(row[0].strip() for row in rows))


async def ensure_loaded(database: BenchDatabase, contacts: int, rebuild: bool) -> None:
    if is_built(database) and not rebuild:
        print(f"  reusing {database.url} ({database.marker.read_text().strip()})")
        return
    await recreate(database)
    engine = open_engine(database.url)
    try:
        await upgrade(engine)
        summary = await fill(engine, contacts)
    finally:
        await engine.dispose()
    print(f"  {summary}")
    mark_built(database, summary)


async def run_backend(backend: str, args: argparse.Namespace) -> list[Comparison]:
    database = bench_database("identify", backend, args.contacts)
    print(f"[{backend}] {database.url}")
    await ensure_loaded(database, args.contacts, args.rebuild)
    rng = random.Random(7)
    engine = open_engine(database.url)
    try:
        async with session_factory(engine)() as session:
            await explain(session, backend)
            stored = await sample_stored(session, args.lookups + WARMUP, rng)
            await measure(session, "warm-up", stored[:WARMUP])
            stored = stored[WARMUP:]
            for lookup in stored:
                # Warm cache: every case reads the same pages; only the first would pay
                # for bringing them in, which is the disk's figure, not identify's.
                await raw_lookup(session, lookup)
            cases = [
                ("hit, E.164", stored),
                ("hit, trunk/gateway formats", rewritten(stored, rng)),
                ("miss, unknown number", await unknown_lookups(session, args.lookups, rng)),
            ]
            results = [await measure(session, label, lookups) for label, lookups in cases]
            sessions = session_factory(engine)
            own_session = await measure(
                session,
                "hit, E.164, a session per call",
                stored,
                service=in_own_session(sessions, service_lookup),
                raw=in_own_session(sessions, raw_lookup),
            )
            results.append(own_session)
    finally:
        await engine.dispose()
    if args.drop:
        await drop(database)
    report(results)
    return results


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=10_000, help="per case")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the database")
    parser.add_argument("--drop", action="store_true", help="delete the database afterwards")
    args = parser.parse_args()
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    results = [result for backend in backends for result in await run_backend(backend, args)]
    return 0 if all(result.met() for result in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
