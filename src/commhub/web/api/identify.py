"""Identify: who is behind a phone number or e-mail address."""

from __future__ import annotations

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.services.identify import who_is
from commhub.web.api import schemas
from commhub.web.api.contacts import region_of
from commhub.web.api.views import contact_out
from commhub.web.endpoints import endpoint, json_response, read_query
from commhub.web.keys import DATABASE


@endpoint(
    "Who is this address? A phone in any format or an e-mail; ambiguous numbers list all "
    "candidates.",
    permission=Permission.IDENTIFY,
    tag="contacts",
    query=schemas.IdentifyQuery,
    response=schemas.IdentifyOut,
)
async def identify(request: web.Request) -> web.StreamResponse:
    query = read_query(request, schemas.IdentifyQuery)
    region = region_of(request, query.region)
    found, views = await who_is(request.app[DATABASE], query.address, region=region)
    return json_response(
        schemas.IdentifyOut(
            address=found.address,
            verdict=found.verdict.value,
            kind="email" if found.kind == "email" else "phone",
            normalized=found.normalized,
            reason=found.reason,
            contacts=[contact_out(v) for v in views],
        )
    )
