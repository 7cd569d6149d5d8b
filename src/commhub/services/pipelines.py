"""Pipelines and stages as an admin sets them up: add, rename, reorder, remove.

A change to the order or the kinds of stages changes what "reached" means
for every deal of the pipeline, so its funnel rows are derived afresh, in
the same transaction as the change: a crash leaves the old order and the old
rows, or the new order and the new rows. Removing a stage moves its deals to
a stage the admin names, through the same move a person makes, so each such
deal's history says who moved it and when; the stage itself stays, marked
removed, for the history that names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.deals import AUTO_CHANNELS, StageKind, read_kind, read_stage_name
from commhub.models import Deal, Pipeline, Stage, utcnow
from commhub.services.database import Database
from commhub.services.deals import Actor, enter_stage
from commhub.services.errors import Conflict, InvalidInput, NotFound
from commhub.store import funnel as funnel_store
from commhub.store import pipelines as store
from commhub.store.deals import standing_in

REWRITE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class PipelineView:
    pipeline: Pipeline
    stages: Sequence[Stage]
    deals: dict[int, int]
    """How many deals stand in each stage now."""


@dataclass(frozen=True, slots=True)
class NewStage:
    name: str
    kind: StageKind


async def pipelines(db: Database) -> list[PipelineView]:
    async with db() as session:
        found = []
        for pipeline in await store.all_pipelines(session):
            stages = await store.stages_of(session, pipeline.id)
            counts = {s.id: await store.deals_in_stage(session, s.id) for s in stages}
            found.append(PipelineView(pipeline, stages, counts))
        return found


async def pipeline(db: Database, pipeline_id: int) -> PipelineView:
    for view in await pipelines(db):
        if view.pipeline.id == pipeline_id:
            return view
    raise NotFound("pipeline", pipeline_id)


async def create_pipeline(db: Database, name: str, stages: Sequence[NewStage]) -> Pipeline:
    """A new pipeline with its stages in the order given (at least one open stage)."""
    name = read_stage_name(name)
    if not any(stage.kind is StageKind.OPEN for stage in stages):
        raise InvalidInput("stages", "a pipeline needs at least one open stage")
    async with db.begin() as session:
        top = max((p.position for p in await store.all_pipelines(session)), default=-1)
        row = Pipeline(name=name, position=top + 1, is_default=False, auto_create={})
        session.add(row)
        await session.flush()
        for position, stage in enumerate(stages):
            session.add(
                Stage(
                    pipeline_id=row.id,
                    name=read_stage_name(stage.name, f"stages.{position}.name"),
                    kind=stage.kind.value,
                    position=position,
                )
            )
    return row


async def update_pipeline(
    db: Database,
    pipeline_id: int,
    *,
    name: str | None = None,
    is_default: bool | None = None,
    auto_create: dict[str, bool] | None = None,
    won_when_paid: bool | None = None,
) -> Pipeline:
    async with db.begin() as session:
        row = await session.get(Pipeline, pipeline_id)
        if row is None:
            raise NotFound("pipeline", pipeline_id)
        if name is not None:
            row.name = read_stage_name(name)
        if is_default:
            await store.clear_default(session)
            row.is_default = True
        elif is_default is False and row.is_default:
            raise InvalidInput("is_default", "make another pipeline the default instead")
        if auto_create is not None:
            unknown = set(auto_create) - set(AUTO_CHANNELS)
            if unknown:
                raise InvalidInput(
                    "auto_create", f"rules exist for {', '.join(AUTO_CHANNELS)} only"
                )
            row.auto_create = {channel: bool(on) for channel, on in auto_create.items()}
        if won_when_paid is not None:
            row.won_when_paid = won_when_paid
    return row


async def add_stage(db: Database, pipeline_id: int, name: str, kind: str) -> Stage:
    """A stage at the end of the pipeline (reorder to put it elsewhere)."""
    chosen = read_kind(kind)
    async with db.begin() as session:
        if await session.get(Pipeline, pipeline_id) is None:
            raise NotFound("pipeline", pipeline_id)
        stage = Stage(
            pipeline_id=pipeline_id,
            name=read_stage_name(name),
            kind=chosen.value,
            position=await store.next_position(session, pipeline_id),
        )
        session.add(stage)
        await session.flush()
        await _rewrite_pipeline(session, pipeline_id)
    return stage


async def update_stage(
    db: Database, stage_id: int, *, name: str | None = None, kind: str | None = None
) -> Stage:
    async with db.begin() as session:
        stage = await _stage(session, stage_id)
        if name is not None:
            stage.name = read_stage_name(name)
            stage.preset = None
        if kind is not None and read_kind(kind).value != stage.kind:
            stage.kind = read_kind(kind).value
            await _keep_an_open_stage(session, stage.pipeline_id)
            await _rewrite_pipeline(session, stage.pipeline_id)
    return stage


async def reorder(db: Database, pipeline_id: int, stage_ids: Sequence[int]) -> Sequence[Stage]:
    """Put the pipeline's stages in the order given (every stage, once)."""
    async with db.begin() as session:
        stages = await store.stages_of(session, pipeline_id)
        if not stages and await session.get(Pipeline, pipeline_id) is None:
            raise NotFound("pipeline", pipeline_id)
        if sorted(stage_ids) != sorted(s.id for s in stages) or len(set(stage_ids)) != len(
            stage_ids
        ):
            raise InvalidInput("stage_ids", "name every stage of the pipeline once")
        by_id = {s.id: s for s in stages}
        for position, stage_id in enumerate(stage_ids):
            by_id[stage_id].position = position
        await session.flush()
        await _rewrite_pipeline(session, pipeline_id)
        return [by_id[i] for i in stage_ids]


async def remove_stage(db: Database, stage_id: int, actor: Actor, *, move_to: int | None) -> int:
    """Remove a stage; the deals in it move to ``move_to`` first. Returns how many moved."""
    async with db.begin() as session:
        stage = await _stage(session, stage_id)
        deals = await standing_in(session, stage.id)
        if deals:
            if move_to is None:
                raise InvalidInput(
                    "move_to", f"{len(deals)} deals stand in this stage: name where they go"
                )
            target = await _stage(session, move_to, field="move_to")
            if target.pipeline_id != stage.pipeline_id or target.id == stage.id:
                raise InvalidInput("move_to", "name another stage of the same pipeline")
            for deal in deals:
                await enter_stage(session, deal, target, actor)
        stage.removed_at = utcnow()
        await session.flush()
        await _keep_an_open_stage(session, stage.pipeline_id)
        await _rewrite_pipeline(session, stage.pipeline_id)
        return len(deals)


async def _stage(session: AsyncSession, stage_id: int, *, field: str = "id") -> Stage:
    stage = await session.get(Stage, stage_id)
    if stage is None or stage.removed_at is not None:
        if field == "id":
            raise NotFound("stage", stage_id)
        raise InvalidInput(field, f"no stage {stage_id}")
    assert isinstance(stage, Stage)
    return stage


async def _keep_an_open_stage(session: AsyncSession, pipeline_id: int) -> None:
    stages = await store.stages_of(session, pipeline_id)
    if not any(s.kind == StageKind.OPEN.value for s in stages):
        raise Conflict("kind", "a pipeline needs at least one open stage")


async def _rewrite_pipeline(session: AsyncSession, pipeline_id: int) -> None:
    """Derive every deal's funnel rows of the pipeline afresh, a batch at a time."""
    lines = store.lines(await store.stages_of(session, pipeline_id, removed=True))
    last = 0
    while True:
        batch = (
            await session.scalars(
                select(Deal)
                .where(Deal.pipeline_id == pipeline_id, Deal.id > last)
                .order_by(Deal.id)
                .limit(REWRITE_BATCH)
            )
        ).all()
        if not batch:
            return
        await funnel_store.rewrite(session, batch, lines)
        last = batch[-1].id
