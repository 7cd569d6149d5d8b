"""Pipelines and their stages: everyone with deals reads them, admins change them."""

from __future__ import annotations

from aiohttp import web

from commhub.domain.deals import StageKind, shown_name
from commhub.domain.roles import Permission
from commhub.services import pipelines
from commhub.services.pipelines import PipelineView
from commhub.web.api import deal_schemas as schemas
from commhub.web.api.deals import acting
from commhub.web.endpoints import endpoint, json_response, path_id, read_body, read_query
from commhub.web.keys import DATABASE


def pipeline_out(view: PipelineView) -> schemas.PipelineOut:
    row = view.pipeline
    return schemas.PipelineOut(
        id=row.id,
        name=row.name,
        is_default=row.is_default,
        auto_create={str(k): bool(v) for k, v in (row.auto_create or {}).items()},
        won_when_paid=row.won_when_paid,
        stages=[
            schemas.StageCount(
                id=s.id,
                name=shown_name(s.name, s.preset),
                preset=s.preset,
                kind=s.kind,
                deals=view.deals.get(s.id, 0),
            )
            for s in view.stages
        ],
    )


async def _shown(request: web.Request, pipeline_id: int, *, status: int = 200) -> web.Response:
    view = await pipelines.pipeline(request.app[DATABASE], pipeline_id)
    return json_response(pipeline_out(view), status=status)


@endpoint(
    "Every pipeline with its stages in order and how many deals stand in each.",
    permission=Permission.DEALS,
    tag="pipelines",
    response=schemas.PipelineList,
)
async def list_pipelines(request: web.Request) -> web.StreamResponse:
    found = await pipelines.pipelines(request.app[DATABASE])
    return json_response(schemas.PipelineList(items=[pipeline_out(v) for v in found]))


@endpoint(
    "Add a pipeline with its stages (at least one open stage).",
    permission=Permission.PIPELINES,
    tag="pipelines",
    body=schemas.PipelineCreate,
    response=schemas.PipelineOut,
    status=201,
)
async def create_pipeline(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.PipelineCreate)
    row = await pipelines.create_pipeline(
        request.app[DATABASE],
        body.name,
        [pipelines.NewStage(s.name, StageKind(s.kind)) for s in body.stages],
    )
    response = await _shown(request, row.id, status=201)
    response.headers["Location"] = f"/api/v1/pipelines/{row.id}"
    return response


@endpoint(
    "Rename a pipeline, make it the default, set its auto-open rules or won-when-paid.",
    permission=Permission.PIPELINES,
    tag="pipelines",
    body=schemas.PipelineUpdate,
    response=schemas.PipelineOut,
)
async def update_pipeline(request: web.Request) -> web.StreamResponse:
    pipeline_id = path_id(request)
    body = await read_body(request, schemas.PipelineUpdate)
    await pipelines.update_pipeline(
        request.app[DATABASE],
        pipeline_id,
        name=body.name,
        is_default=body.is_default,
        auto_create=body.auto_create,
        won_when_paid=body.won_when_paid,
    )
    return await _shown(request, pipeline_id)


@endpoint(
    "Add a stage at the end of a pipeline.",
    permission=Permission.PIPELINES,
    tag="pipelines",
    body=schemas.StageIn,
    response=schemas.PipelineOut,
    status=201,
)
async def add_stage(request: web.Request) -> web.StreamResponse:
    pipeline_id = path_id(request)
    body = await read_body(request, schemas.StageIn)
    await pipelines.add_stage(request.app[DATABASE], pipeline_id, body.name, body.kind)
    return await _shown(request, pipeline_id, status=201)


@endpoint(
    "Rename a stage or change its kind (a pipeline keeps at least one open stage).",
    permission=Permission.PIPELINES,
    tag="pipelines",
    body=schemas.StageUpdate,
    response=schemas.PipelineOut,
)
async def update_stage(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.StageUpdate)
    stage = await pipelines.update_stage(
        request.app[DATABASE], path_id(request), name=body.name, kind=body.kind
    )
    return await _shown(request, stage.pipeline_id)


@endpoint(
    "Put a pipeline's stages in this order (every stage, once).",
    permission=Permission.PIPELINES,
    tag="pipelines",
    body=schemas.StageOrder,
    response=schemas.PipelineOut,
)
async def reorder_stages(request: web.Request) -> web.StreamResponse:
    pipeline_id = path_id(request)
    body = await read_body(request, schemas.StageOrder)
    await pipelines.reorder(request.app[DATABASE], pipeline_id, body.stage_ids)
    return await _shown(request, pipeline_id)


@endpoint(
    "Remove a stage; the deals standing in it move to move_to first (recorded as moves).",
    permission=Permission.PIPELINES,
    tag="pipelines",
    query=schemas.StageRemoval,
    response=schemas.StageRemoved,
)
async def remove_stage(request: web.Request) -> web.StreamResponse:
    stage_id = path_id(request)
    query = read_query(request, schemas.StageRemoval)
    moved = await pipelines.remove_stage(
        request.app[DATABASE], stage_id, acting(request), move_to=query.move_to
    )
    return json_response(schemas.StageRemoved(moved=moved))
