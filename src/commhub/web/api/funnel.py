"""The funnel report: what reached each stage in a period, went on, and was won."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from aiohttp import web

from commhub.domain.deals import shown_name
from commhub.domain.roles import Permission
from commhub.services.funnel import funnel_report
from commhub.web.api import deal_schemas as schemas
from commhub.web.api.deals import caller_zone, money_out
from commhub.web.endpoints import endpoint, json_response, read_query
from commhub.web.keys import DATABASE
from commhub.web.problems import invalid


@endpoint(
    "The funnel of a pipeline for the days since..until (inclusive, in the caller's zone), "
    "optionally of one owner or source. Stage names: the admin's, else the English preset "
    "name with its preset key.",
    permission=Permission.FUNNEL,
    tag="reports",
    query=schemas.FunnelQuery,
    response=schemas.FunnelOut,
)
async def funnel(request: web.Request) -> web.StreamResponse:
    query = read_query(request, schemas.FunnelQuery)
    if query.until < query.since:
        raise invalid("query.until", "the last day comes before the first")
    zone = await caller_zone(request)
    since = datetime.combine(query.since, time(), tzinfo=zone)
    until = datetime.combine(query.until + timedelta(days=1), time(), tzinfo=zone)
    report = await funnel_report(
        request.app[DATABASE],
        pipeline_id=query.pipeline_id,
        since=since,
        until=until,
        owner_id=query.owner_id,
        source=None if query.source is None else query.source.value,
    )
    stages = []
    for row in report.funnel.stages:
        stage = report.stages[row.stage_id]
        stages.append(
            schemas.FunnelStageOut(
                stage_id=row.stage_id,
                name=shown_name(stage.name, stage.preset),
                preset=stage.preset,
                kind=row.kind.value,
                reached=row.reached,
                moved_on=row.moved_on,
                won=row.won,
                to_next=None if row.to_next is None else str(row.to_next),
                to_won=None if row.to_won is None else str(row.to_won),
                amounts=[money_out(m.amount, m.currency) for m in row.amounts],
                median_days=None if row.median_days is None else str(row.median_days),
            )
        )
    return json_response(
        schemas.FunnelOut(
            pipeline_id=report.pipeline.id,
            since=since,
            until=until,
            stages=stages,
            lost_reasons=[
                schemas.LostReason(reason=r, deals=n) for r, n in report.funnel.lost_reasons
            ],
        )
    )
