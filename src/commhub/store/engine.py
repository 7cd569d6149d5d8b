"""Engines and sessions: one place that knows how to open the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from commhub.store.dialect import SQLITE_LOWER, python_lower

SessionFactory = async_sessionmaker[AsyncSession]


def open_engine(url: str, *, echo: bool = False, log_parameters: bool = False) -> AsyncEngine:
    """An async engine for ``url``, with SQLite tuned for one writer and many readers.

    SQLite gets WAL (readers never wait for the writer), enforced foreign keys
    and a busy timeout, so a long import does not make a screen pop fail, and
    a ``lower()`` that folds Cyrillic for the log's text search.

    A statement's parameters (phone numbers, addresses) stay out of its errors
    and echo unless ``log_parameters`` (``COMMHUB_LOG_PERSONAL_DATA``) asks for them.
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": not log_parameters}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    dbapi_connection.create_function(SQLITE_LOWER, 1, python_lower, deterministic=True)


def session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep loaded objects usable after commit (no lazy reloads in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
