"""Health: is the hub up and can it reach its database? Public, for load balancers."""

from __future__ import annotations

from aiohttp import web

from commhub.services.health import database_status
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
    database = await database_status(request.app[DATABASE])
    status = "ok" if database == "ok" else "degraded"
    jobs = type(request.app[JOBS]).__name__
    out = schemas.HealthOut(status=status, database=database, jobs=jobs)
    return json_response(out, status=200 if status == "ok" else 503)
