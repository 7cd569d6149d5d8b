"""The one backend difference the queries need: ``INSERT … ON CONFLICT`` builders."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """An ``INSERT`` for ``table`` that supports ``on_conflict_do_nothing/do_update``."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
