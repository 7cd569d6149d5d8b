"""Whether the hub can reach its database, for the public health check."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from commhub.services.database import Database


async def database_status(db: Database) -> str:
    """``"ok"``, or ``"unreachable: <error class>"`` when a trivial query fails.

    Never raises for a database that is down: a load balancer asks precisely then.
    """
    try:
        async with db() as session:
            await session.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok"
