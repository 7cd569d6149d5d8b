"""The backend differences the queries need: ``INSERT … ON CONFLICT`` builders, bulk writes
and case-insensitive text search that folds more than ASCII."""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any, Final

from sqlalchemy import ColumnElement, String, Table, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import ValuesBase
from sqlalchemy.sql.functions import FunctionElement

SQLITE_LOWER: Final = "commhub_lower"
"""The SQL function that SQLite connections get (see ``store/engine.py``): Python's
``str.lower``, because SQLite's own ``lower()`` and ``LIKE`` fold ASCII letters only."""
LIKE_ESCAPE: Final = "\\"


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


class unicode_lower(FunctionElement[str]):
    """``lower(text)`` that folds every script, Cyrillic included, on both backends."""

    type = String()
    inherit_cache = True


@compiles(unicode_lower)
def _lower(element: unicode_lower, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL's lower() follows the database's LC_CTYPE, which folds Cyrillic
    # under any UTF-8 locale (C.UTF-8, ru_RU.UTF-8, en_US.UTF-8).
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(unicode_lower, "sqlite")
def _lower_sqlite(element: unicode_lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_LOWER}({compiler.process(element.clauses, **kw)})"


class not_indexed(FunctionElement[str]):
    """A column that SQLite must not pick an index for: a term beside ``id IN (…)``.

    Without statistics SQLite's planner may take ``state = 'queued'`` through
    the state index over the id list, reading every queued row per claim (a
    campaign's backlog: thousands per four messages). SQLite's unary ``+``
    takes the term out of index choice; other databases plan by statistics.
    """

    type = String()
    inherit_cache = True


@compiles(not_indexed)
def _plain(element: not_indexed, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(not_indexed, "sqlite")
def _plus(element: not_indexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


def python_lower(text: str | None) -> str | None:
    """The function registered on SQLite connections as ``SQLITE_LOWER``."""
    return None if text is None else text.lower()


def contains_text(columns: Sequence[Any], needle: str) -> ColumnElement[bool]:
    """Any of ``columns`` holds ``needle``, ignoring case in any script.

    ``%`` and ``_`` in ``needle`` are matched literally, not as wildcards.
    """
    escaped = (
        needle.lower()
        .replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    pattern = f"%{escaped}%"
    return or_(*(unicode_lower(column).like(pattern, escape=LIKE_ESCAPE) for column in columns))
