"""The backend differences the queries need: ``INSERT … ON CONFLICT`` builders and bulk writes."""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ValuesBase


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """An ``INSERT`` for ``table`` that supports ``on_conflict_do_nothing/do_update``."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def write_rows(
    session: AsyncSession,
    statement: ValuesBase,
    table: Table,
    keys: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Run ``statement`` (an INSERT/UPSERT on ``table``) once per row of ``keys``-ordered values.

    On SQLite the statement is compiled once and its rows go straight to the
    driver's ``executemany``, converted only by the column types that need it
    (JSON): SQLAlchemy's per-row parameter processing was the largest part of
    a million-row import's time in the writing process. PostgreSQL takes the
    ordinary path, where insertmanyvalues batches the rows itself.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite":
        await session.execute(statement, [dict(zip(keys, row, strict=True)) for row in rows])
        return
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    names = list(compiled.positiontup or ())
    constants = tuple(compiled.params[name] for name in names if name not in keys)
    positions = iter(range(len(keys), len(keys) + len(constants)))
    order = [keys.index(name) if name in keys else next(positions) for name in names]
    converters = [
        (i, processor)
        for i, name in enumerate(names)
        if name in keys and (processor := table.c[name].type.bind_processor(dialect)) is not None
    ]
    pick = itemgetter(*order)
    values: list[tuple[Any, ...]] = []
    for row in rows:
        picked = pick(row + constants)
        bound = picked if isinstance(picked, tuple) else (picked,)
        if converters:
            as_list = list(bound)
            for i, processor in converters:
                as_list[i] = processor(as_list[i])
            bound = tuple(as_list)
        values.append(bound)
    connection = await session.connection()
    await connection.exec_driver_sql(compiled.string, values)
