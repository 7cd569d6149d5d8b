"""The deals board: a pipeline's stages as columns, each with its count, sums per
currency and first cards; more cards of a column page by cursor."""

from __future__ import annotations

from aiohttp import web

from commhub.domain.pagination import Cursor
from commhub.domain.roles import Permission
from commhub.services import deal_views
from commhub.services.deal_views import Column, DealFilter, Names
from commhub.web.api import deal_schemas as schemas
from commhub.web.api.deals import acting, deal_out, money_out, stage_ref
from commhub.web.endpoints import endpoint, json_response, path_id, read_query
from commhub.web.keys import DATABASE


def column_out(column: Column, names: Names) -> schemas.ColumnOut:
    after = column.next_cursor
    return schemas.ColumnOut(
        stage=stage_ref(names.stages[column.stage_id]),
        count=column.count,
        sums=[money_out(m.amount, m.currency) for m in column.sums],
        deals=[deal_out(d, names) for d in column.deals],
        next_cursor=None if after is None else Cursor(after[0], after[1]).encode(),
    )


@endpoint(
    "The board of a pipeline: every stage with its count, sums and first cards.",
    permission=Permission.DEALS,
    tag="deals",
    query=schemas.BoardQuery,
    response=schemas.BoardOut,
)
async def board(request: web.Request) -> web.StreamResponse:
    query = read_query(request, schemas.BoardQuery)
    which = DealFilter(
        owner_id=query.owner_id,
        source=None if query.source is None else query.source.value,
        text=query.q,
    )
    found = await deal_views.board(
        request.app[DATABASE], query.pipeline_id, which, acting(request), limit=query.limit
    )
    return json_response(
        schemas.BoardOut(
            pipeline_id=found.pipeline.id,
            columns=[column_out(c, found.names) for c in found.columns],
        )
    )


@endpoint(
    "More cards of one board column, after next_cursor.",
    permission=Permission.DEALS,
    tag="deals",
    query=schemas.ColumnQuery,
    response=schemas.ColumnOut,
)
async def column(request: web.Request) -> web.StreamResponse:
    stage_id = path_id(request)
    query = read_query(request, schemas.ColumnQuery)
    after = None if query.cursor is None else Cursor.decode(query.cursor)
    which = DealFilter(
        owner_id=query.owner_id,
        source=None if query.source is None else query.source.value,
        text=query.q,
    )
    found, names = await deal_views.board_column(
        request.app[DATABASE],
        stage_id,
        which,
        acting(request),
        after=None if after is None else (after.occurred_at, after.id),
        limit=query.limit,
    )
    return json_response(column_out(found, names))
