"""Pipelines and their stages."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.deals import StageKind
from commhub.domain.funnel import StageLine
from commhub.models import Deal, Pipeline, Stage


async def all_pipelines(session: AsyncSession) -> Sequence[Pipeline]:
    rows = await session.scalars(select(Pipeline).order_by(Pipeline.position, Pipeline.id))
    return rows.all()


async def default_pipeline(session: AsyncSession) -> Pipeline | None:
    """The pipeline marked default, else the first one."""
    return await session.scalar(
        select(Pipeline).order_by(Pipeline.is_default.desc(), Pipeline.position, Pipeline.id)
    )


async def chosen_or_default(session: AsyncSession, pipeline_id: int | None) -> Pipeline | None:
    """The pipeline named, or the default when none is named; ``None`` if there is none."""
    if pipeline_id is None:
        return await default_pipeline(session)
    return await session.get(Pipeline, pipeline_id)


async def stages_of(
    session: AsyncSession, pipeline_id: int, *, removed: bool = False
) -> Sequence[Stage]:
    """A pipeline's stages in order (with ``removed``, those taken away as well)."""
    query = select(Stage).where(Stage.pipeline_id == pipeline_id)
    if not removed:
        query = query.where(Stage.removed_at.is_(None))
    rows = await session.scalars(query.order_by(Stage.position, Stage.id))
    return rows.all()


async def all_stages(session: AsyncSession) -> Sequence[Stage]:
    """Every stage of every pipeline, removed ones too (history names them)."""
    rows = await session.scalars(select(Stage).order_by(Stage.pipeline_id, Stage.position))
    return rows.all()


def lines(stages: Sequence[Stage]) -> list[StageLine]:
    return [
        StageLine(s.id, s.position, StageKind(s.kind), removed=s.removed_at is not None)
        for s in stages
    ]


async def deals_in_stage(session: AsyncSession, stage_id: int) -> int:
    count = await session.scalar(select(func.count()).where(Deal.stage_id == stage_id))
    return int(count or 0)


async def clear_default(session: AsyncSession) -> None:
    await session.execute(update(Pipeline).values(is_default=False))


async def next_position(session: AsyncSession, pipeline_id: int) -> int:
    top = await session.scalar(
        select(func.max(Stage.position)).where(Stage.pipeline_id == pipeline_id)
    )
    return 0 if top is None else int(top) + 1
