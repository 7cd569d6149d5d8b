"""Fill a migrated database with deals, their stage history and their funnel rows.

The data is generated in Python from one seed (the same on both backends) and
written with bulk INSERTs: ``executemany`` in one transaction per chunk on
SQLite, ``COPY`` on PostgreSQL. The funnel rows are derived per deal by
``domain.funnel.reaches``, the function the services use, so the report reads
what the hub itself would have written.

Distribution (``--deals N`` gives N deals and about 5·N stage changes):

- deals opened uniformly over three years (2024-2026), 70 % in the default
  pipeline (New lead → In progress → Proposal → Won | Lost), 30 % in a
  "Renewals" pipeline of four open stages, one won and one lost;
- each deal has 1 to 9 stage changes (uniform: 5 on average, creation included),
  a random walk: one stage forward 50 %, a skip of two 15 %, one back 10 %,
  lost 15 %, won 10 %; a closed deal that moves again is reopened at a random
  open stage; the time between moves is exponential with a mean of six days;
- 20 owners (5 % of the deals have none), sources call/email/manual/campaign/
  import/sms, currencies RUB 70 %, EUR 15 %, USD 10 %, JPY 5 % (amounts with
  their currency's decimals), a lost reason on most lost deals.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from commhub.domain.deals import StageKind
from commhub.domain.funnel import Move, StageLine, reaches
from commhub.models import Deal, Pipeline, Stage, StageChange, StageReach, User
from commhub.store import funnel as funnel_store
from commhub.store.engine import session_factory

START: Final = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_S: Final = 3 * 365 * 86_400
MEAN_GAP_S: Final = 6 * 86_400
OWNERS: Final = 20
CHUNK: Final = 50_000
SOURCES: Final = (("call", 35), ("email", 25), ("manual", 20), ("campaign", 10), ("import", 5))
CURRENCIES: Final = (("RUB", 70, 2), ("EUR", 15, 2), ("USD", 10, 2), ("JPY", 5, 0))
REASONS: Final = ("too expensive", "chose a competitor", "no budget", "no answer", "")


@dataclass(frozen=True, slots=True)
class Layout:
    """The pipelines the deals live in, as the generator and the funnel see them."""

    pipelines: list[tuple[int, list[Stage]]]

    def lines(self, pipeline_id: int) -> list[StageLine]:
        stages = dict(self.pipelines)[pipeline_id]
        return [StageLine(s.id, s.position, StageKind(s.kind)) for s in stages]


async def prepare(engine: AsyncEngine) -> Layout:
    """Owners and a second pipeline beside the default one the migration seeds."""
    async with session_factory(engine).begin() as session:
        session.add_all(
            User(
                id=n,
                username=f"owner{n}",
                display_name=f"Owner {n}",
                password_hash="-",
                role="operator",
            )
            for n in range(1, OWNERS + 1)
        )
        renewals = Pipeline(name="Renewals", position=1)
        session.add(renewals)
        await session.flush()
        for position, kind in enumerate(["open"] * 4 + ["won", "lost"]):
            session.add(
                Stage(
                    pipeline_id=renewals.id,
                    name=f"Renewal {position}",
                    kind=kind,
                    position=position,
                )
            )
        await session.flush()
        pipelines = []
        for pipeline_id in (1, renewals.id):
            stages = await session.scalars(
                select(Stage).where(Stage.pipeline_id == pipeline_id).order_by(Stage.position)
            )
            pipelines.append((pipeline_id, list(stages)))
    return Layout(pipelines)


def _walk(rng: random.Random, stages: list[Stage], count: int, at: datetime) -> list[Move]:
    line = [s for s in stages if s.kind == "open"]
    won = next(s for s in stages if s.kind == "won")
    lost = next(s for s in stages if s.kind == "lost")
    moves = [Move(line[0].id, at)]
    place: int | None = 0
    for _ in range(count - 1):
        at += timedelta(seconds=int(rng.expovariate(1 / MEAN_GAP_S)) + 60)
        if place is None:
            place = rng.randrange(len(line))
            moves.append(Move(line[place].id, at))
            continue
        roll = rng.random()
        if roll < 0.5:
            place += 1
        elif roll < 0.65:
            place += 2
        elif roll < 0.75 and place > 0:
            place -= 1
        elif roll < 0.9:
            moves.append(Move(lost.id, at))
            place = None
            continue
        else:
            place = len(line)
        if place >= len(line):
            moves.append(Move(won.id, at))
            place = None
        else:
            moves.append(Move(line[place].id, at))
    return moves


def _pick(rng: random.Random, weighted: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    return rng.choices(weighted, weights=[row[1] for row in weighted])[0]


@dataclass(slots=True)
class Chunk:
    deals: list[dict[str, Any]]
    changes: list[dict[str, Any]]
    reaches: list[dict[str, Any]]


def generate(layout: Layout, total: int, seed: int = 18) -> Iterator[Chunk]:
    """The deals ``1..total`` in chunks, with their history and funnel rows."""
    rng = random.Random(seed)
    change_id = reach_id = 0
    lines = {pid: layout.lines(pid) for pid, _ in layout.pipelines}
    kinds = {s.id: s.kind for _, stages in layout.pipelines for s in stages}
    for lo in range(1, total + 1, CHUNK):
        chunk = Chunk([], [], [])
        for deal_id in range(lo, min(lo + CHUNK, total + 1)):
            pipeline_id, stages = layout.pipelines[0 if rng.random() < 0.7 else 1]
            opened = START + timedelta(seconds=rng.randrange(SPAN_S))
            moves = _walk(rng, stages, rng.randint(1, 9), opened)
            currency, _, places = _pick(rng, CURRENCIES)
            reason = rng.choice(REASONS)
            amount = Decimal(rng.randrange(1_000, 5_000_000)).scaleb(-places)
            owner = None if rng.random() < 0.05 else rng.randint(1, OWNERS)
            source = _pick(rng, SOURCES)[0]
            last = moves[-1]
            closes = kinds[last.to_stage_id] != "open"
            chunk.deals.append(
                {
                    "id": deal_id,
                    "pipeline_id": pipeline_id,
                    "stage_id": last.to_stage_id,
                    "title": f"Deal {deal_id}",
                    "amount": amount,
                    "currency": currency,
                    "owner_id": owner,
                    "source": source,
                    "next_step": "",
                    "lost_reason": reason if kinds[last.to_stage_id] == "lost" else "",
                    "notes": "",
                    "stage_entered_at": last.at,
                    "closed_at": last.at if closes else None,
                    "created_at": opened,
                    "updated_at": last.at,
                }
            )
            previous: int | None = None
            for move in moves:
                change_id += 1
                chunk.changes.append(
                    {
                        "id": change_id,
                        "deal_id": deal_id,
                        "from_stage_id": previous,
                        "to_stage_id": move.to_stage_id,
                        "changed_at": move.at,
                        "changed_by_id": owner,
                    }
                )
                previous = move.to_stage_id
            for reach in reaches(lines[pipeline_id], moves):
                reach_id += 1
                chunk.reaches.append(
                    {
                        "id": reach_id,
                        "deal_id": deal_id,
                        "pipeline_id": pipeline_id,
                        "stage_id": reach.stage_id,
                        "reached_at": reach.reached_at,
                        "skipped": reach.skipped,
                        "moved_on_at": reach.moved_on_at,
                        "won_at": reach.won_at,
                        "seconds_in": reach.seconds_in,
                        "owner_id": owner,
                        "source": source,
                        "amount": amount,
                        "currency": currency,
                        "lost_reason": (
                            (reason if kinds[last.to_stage_id] == "lost" else "")
                            if kinds[reach.stage_id] == "lost"
                            else None
                        ),
                    }
                )
        yield chunk


TABLES: Final = (("deals", Deal), ("stage_changes", StageChange), ("stage_reaches", StageReach))


async def fill(engine: AsyncEngine, total: int) -> str:
    """Generate and write ``total`` deals; a one-line summary of what was loaded."""
    start = time.perf_counter()
    layout = await prepare(engine)
    counts = {"deals": 0, "stage_changes": 0, "stage_reaches": 0}
    postgres = engine.dialect.name == "postgresql"
    for chunk in generate(layout, total):
        rows = {
            "deals": chunk.deals,
            "stage_changes": chunk.changes,
            "stage_reaches": chunk.reaches,
        }
        async with engine.begin() as connection:
            for name, model in TABLES:
                if postgres:
                    await _copy(connection, name, rows[name])
                else:
                    await connection.execute(insert(model), rows[name])
                counts[name] += len(rows[name])
        print(
            f"  {counts['deals']:>9} deals {counts['stage_changes']:>9} changes "
            f"{counts['stage_reaches']:>9} funnel rows, {time.perf_counter() - start:6.1f} s",
            flush=True,
        )
    async with AsyncSession(engine) as session:
        # The daily sums the report reads, made from the rows just written.
        for pipeline_id, _ in layout.pipelines:
            await funnel_store.rebuild(session, pipeline_id)
        await session.commit()
    async with engine.connect() as connection:
        if postgres:
            for name, _ in TABLES:
                await connection.execute(
                    text(f"SELECT setval('{name}_id_seq', (SELECT max(id) FROM {name}))")
                )
            await connection.commit()
            raw = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await raw.execute(text("VACUUM ANALYZE"))
        else:
            await connection.execute(text("ANALYZE"))
            await connection.commit()
    return (
        f"{counts['deals']} deals, {counts['stage_changes']} stage changes, "
        f"{counts['stage_reaches']} funnel rows loaded in {time.perf_counter() - start:.1f} s"
    )


async def _copy(connection: Any, table: str, rows: list[dict[str, Any]]) -> None:
    """COPY ``rows`` into ``table`` through asyncpg (naive UTC, as UTCDateTime stores)."""
    if not rows:
        return
    columns = list(rows[0])
    raw = await connection.get_raw_connection()
    records = [
        tuple(
            value.astimezone(UTC).replace(tzinfo=None) if isinstance(value, datetime) else value
            for value in row.values()
        )
        for row in rows
    ]
    await raw.driver_connection.copy_records_to_table(table, records=records, columns=columns)
