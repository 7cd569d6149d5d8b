"""Segments: marketers (and managers) choose people by rules or by hand, counted live."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.models import Segment
from commhub.services import segments
from commhub.web.api import segment_schemas as schemas
from commhub.web.endpoints import endpoint, json_response, path_id, read_body
from commhub.web.keys import DATABASE, principal


def segment_out(row: Segment, count: int | None = None) -> schemas.SegmentOut:
    return schemas.SegmentOut(
        id=row.id,
        name=row.name,
        kind=row.kind,
        rules=row.rules,
        description=row.description,
        import_id=row.import_id,
        count=count,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def preview_out(found: segments.Preview) -> schemas.PreviewOut:
    return schemas.PreviewOut(
        count=found.count,
        sample=[
            schemas.MemberOut(id=r.id, name=r.name, company=r.company, phone=r.phone, email=r.email)
            for r in found.sample
        ],
    )


async def _shown(request: web.Request, segment_id: int, *, status: int = 200) -> web.Response:
    row, count = await segments.get(request.app[DATABASE], segment_id)
    return json_response(segment_out(row, count), status=status)


@endpoint(
    "Saved segments and static lists, by name.",
    permission=Permission.SEGMENTS,
    tag="segments",
    response=schemas.SegmentList,
)
async def list_segments(request: web.Request) -> web.StreamResponse:
    rows = await segments.listing(request.app[DATABASE])
    return json_response(schemas.SegmentList(items=[segment_out(r) for r in rows]))


@endpoint(
    "Save a segment: rules (dynamic) or an empty static list; a bad rule names its path.",
    permission=Permission.SEGMENTS,
    tag="segments",
    body=schemas.SegmentIn,
    response=schemas.SegmentOut,
    status=201,
)
async def create_segment(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.SegmentIn)
    row = await segments.create(
        request.app[DATABASE],
        name=body.name,
        kind=body.kind,
        rules=body.rules,
        description=body.description,
        user_id=principal(request).user_id,
    )
    response = await _shown(request, row.id, status=201)
    response.headers["Location"] = f"/api/v1/segments/{row.id}"
    return response


@endpoint(
    "A static list of everyone an import created.",
    permission=Permission.SEGMENTS,
    tag="segments",
    body=schemas.SegmentFromImport,
    response=schemas.SegmentOut,
    status=201,
)
async def segment_from_import(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.SegmentFromImport)
    row = await segments.from_import(
        request.app[DATABASE], body.import_id, name=body.name, user_id=principal(request).user_id
    )
    return await _shown(request, row.id, status=201)


@endpoint(
    "Count unsaved rules now, with the first members: the live count while editing.",
    permission=Permission.SEGMENTS,
    tag="segments",
    body=schemas.PreviewIn,
    response=schemas.PreviewOut,
)
async def preview_segment(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.PreviewIn)
    found = await segments.preview(request.app[DATABASE], body.rules, limit=body.limit)
    return json_response(preview_out(found))


@endpoint(
    "A segment with how many it holds now.",
    permission=Permission.SEGMENTS,
    tag="segments",
    response=schemas.SegmentOut,
)
async def get_segment(request: web.Request) -> web.StreamResponse:
    return await _shown(request, path_id(request))


@endpoint(
    "Its first members now, and how many it holds.",
    permission=Permission.SEGMENTS,
    tag="segments",
    response=schemas.PreviewOut,
)
async def segment_members(request: web.Request) -> web.StreamResponse:
    found = await segments.members_sample(request.app[DATABASE], path_id(request))
    return json_response(preview_out(found))


@endpoint(
    "Rename a segment, change its description or its rules.",
    permission=Permission.SEGMENTS,
    tag="segments",
    body=schemas.SegmentUpdate,
    response=schemas.SegmentOut,
)
async def update_segment(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.SegmentUpdate)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    row = await segments.update(request.app[DATABASE], path_id(request), changes)
    return await _shown(request, row.id)


@endpoint(
    "Set a segment aside; campaigns keep the lists they froze.",
    permission=Permission.SEGMENTS,
    tag="segments",
    status=204,
)
async def remove_segment(request: web.Request) -> web.StreamResponse:
    await segments.remove(request.app[DATABASE], path_id(request))
    return web.Response(status=204)


@endpoint(
    "Put contacts on a static list.",
    permission=Permission.SEGMENTS,
    tag="segments",
    body=schemas.Selection,
    response=schemas.MemberCount,
)
async def add_members(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.Selection)
    count = await segments.add_members(request.app[DATABASE], path_id(request), body.contact_ids)
    return json_response(schemas.MemberCount(count=count))


@endpoint(
    "Take contacts off a static list.",
    permission=Permission.SEGMENTS,
    tag="segments",
    body=schemas.Selection,
    response=schemas.MemberCount,
)
async def remove_members(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.Selection)
    count = await segments.remove_members(request.app[DATABASE], path_id(request), body.contact_ids)
    return json_response(schemas.MemberCount(count=count))
