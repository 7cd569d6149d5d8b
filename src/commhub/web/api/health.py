"""Health: is the hub up and can it reach its database? Public, for load balancers."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from commhub.web.api import schemas
from commhub.web.endpoints import endpoint, json_response
from commhub.web.keys import DATABASE, JOBS


@endpoint(
    "Liveness and database reachability.",
    permission=None,
    tag="health",
    response=schemas.HealthOut,
)
async def health(request: web.Request) -> web.StreamResponse:
    database = "ok"
    try:
        async with request.app[DATABASE]() as session:
            await session.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        database = f"unreachable: {type(exc).__name__}"
    status = "ok" if database == "ok" else "degraded"
    jobs = type(request.app[JOBS]).__name__
    out = schemas.HealthOut(status=status, database=database, jobs=jobs)
    return json_response(out, status=200 if status == "ok" else 503)
