"""The funnel report: for a period, a pipeline, an owner and a source, what reached each
stage, went on, was won, and why deals were lost (rules in ``domain.funnel``).

The period is two instants: the caller turns the viewer's days into them in
the viewer's time zone, so "December" means December where the viewer is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from commhub.domain.deals import StageKind
from commhub.domain.funnel import Funnel, funnel_of
from commhub.models import Pipeline, Stage
from commhub.services.database import Database
from commhub.services.deal_console import Choices, choices
from commhub.services.errors import InvalidInput, NotFound
from commhub.store import funnel as store
from commhub.store import pipelines as pipeline_store
from commhub.store.funnel import FunnelFilter


@dataclass(frozen=True, slots=True)
class FunnelReport:
    pipeline: Pipeline
    stages: dict[int, Stage]
    funnel: Funnel
    which: FunnelFilter


async def funnel_report(
    db: Database,
    *,
    pipeline_id: int | None,
    since: datetime,
    until: datetime,
    owner_id: int | None = None,
    source: str | None = None,
) -> FunnelReport:
    if until <= since:
        raise InvalidInput("until", "the period must end after it starts")
    async with db() as session:
        pipeline = await pipeline_store.chosen_or_default(session, pipeline_id)
        if pipeline is None:
            raise NotFound("pipeline", pipeline_id if pipeline_id is not None else "default")
        stages = await pipeline_store.stages_of(session, pipeline.id)
        which = FunnelFilter(pipeline.id, since, until, owner_id=owner_id, source=source)
        lines = pipeline_store.lines(stages)
        lost = [s.id for s in stages if s.kind == StageKind.LOST.value]
        funnel = funnel_of(
            lines,
            await store.counts(session, which),
            await store.days(session, which),
            await store.lost_reasons(session, which, lost),
        )
    return FunnelReport(pipeline, {s.id: s for s in stages}, funnel, which)


@dataclass(frozen=True, slots=True)
class FunnelScreen:
    """The report and what its filters offer (pipelines with their stages, people)."""

    report: FunnelReport
    choices: Choices


async def funnel_screen(
    db: Database,
    *,
    pipeline_id: int | None,
    since: datetime,
    until: datetime,
    owner_id: int | None = None,
    source: str | None = None,
) -> FunnelScreen:
    report = await funnel_report(
        db, pipeline_id=pipeline_id, since=since, until=until, owner_id=owner_id, source=source
    )
    return FunnelScreen(report, await choices(db))
