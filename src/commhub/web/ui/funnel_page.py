"""The funnel report: what reached each stage in a period, went on, was won, and why deals
were lost; as a page (chart and table, every number a link to its deals) and as CSV/XLSX.

How it counts is ``domain.funnel``'s docstring (and docs/deals.md): by the
stage history, in the viewer's time zone, a skipped stage counted as passed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final
from urllib.parse import urlencode

from aiohttp import web
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from commhub.domain.deals import DealSource, StageKind
from commhub.domain.funnel import FunnelStage
from commhub.domain.roles import Permission
from commhub.domain.spreadsheet_cells import neutralised
from commhub.services import funnel
from commhub.services.errors import InvalidInput
from commhub.web.endpoints import endpoint
from commhub.web.keys import DATABASE
from commhub.web.ui import periods
from commhub.web.ui.deal_values import money, read_id
from commhub.web.ui.funnel_chart import funnel_chart
from commhub.web.ui.i18n import N_, translations
from commhub.web.ui.log_export import UTF8_BOM, send_file
from commhub.web.ui.render import SECURITY_HEADERS, Viewer, page, translate, viewer
from commhub.web.ui.stage_names import pipeline_name, stage_name

SOURCES: Final = tuple(s.value for s in DealSource)
SOURCE_LABELS: Final = {
    DealSource.CALL.value: N_("Inbound call"),
    DealSource.EMAIL.value: N_("E-mail"),
    DealSource.SMS.value: N_("SMS"),
    DealSource.CAMPAIGN.value: N_("Campaign"),
    DealSource.CALL_LIST.value: N_("Call list"),
    DealSource.MANUAL.value: N_("Manual"),
    DealSource.IMPORT.value: N_("Import"),
}
"""How each source is named on the console's pages (English source text)."""


@dataclass(frozen=True, slots=True)
class Asked:
    """The report's filters as the query string gave them."""

    period: periods.Period
    pipeline_id: int | None
    owner_id: int | None
    source: str | None


@dataclass(frozen=True, slots=True)
class Row:
    stage: FunnelStage
    name: str
    links: dict[str, str]
    """The deals behind each figure: ``reached``, ``moved_on``, ``won``."""


def _asked(query: Mapping[str, str], me: Viewer) -> Asked:
    """The filters; :class:`periods.PeriodError` or :class:`InvalidInput` when unreadable."""
    period = periods.resolve(
        query.get("period") or periods.THIS_MONTH,
        query.get("from"),
        query.get("to"),
        today=me.fmt.now().date(),
        zone=me.fmt.zone,
    )
    source = query.get("source", "").strip() or None
    if source is not None and source not in SOURCES:
        raise InvalidInput("source", f"unknown source {source[:40]!r}")
    return Asked(
        period,
        read_id(query.get("pipeline", ""), "pipeline"),
        read_id(query.get("owner", ""), "owner"),
        source,
    )


async def _screen(request: web.Request, asked: Asked) -> funnel.FunnelScreen:
    return await funnel.funnel_screen(
        request.app[DATABASE],
        pipeline_id=asked.pipeline_id,
        since=asked.period.since,
        until=asked.period.until,
        owner_id=asked.owner_id,
        source=asked.source,
    )


def deals_link(asked: Asked, pipeline_id: int, stage_id: int, outcome: str) -> str:
    """The deals list showing the deals behind one figure (its drill-down parameters)."""
    params = {
        "pipeline": str(pipeline_id),
        "reached": str(stage_id),
        "outcome": outcome,
        "from": asked.period.first.isoformat(),
        "to": asked.period.last.isoformat(),
    }
    if asked.owner_id is not None:
        params["owner"] = str(asked.owner_id)
    if asked.source is not None:
        params["source"] = asked.source
    return "/deals?" + urlencode(params)


def _rows(screen: funnel.FunnelScreen, asked: Asked, me: Viewer) -> list[Row]:
    gettext = translations(me.language).gettext
    report = screen.report
    return [
        Row(
            stage=stage,
            name=stage_name(report.stages[stage.stage_id], gettext),
            links={
                outcome: deals_link(asked, report.pipeline.id, stage.stage_id, outcome)
                for outcome in ("reached", "moved_on", "won")
            },
        )
        for stage in report.funnel.stages
    ]


@endpoint(
    "Funnel report: deals reaching each stage in a period, conversion, amounts, lost reasons.",
    permission=Permission.FUNNEL,
    tag="pages",
)
async def funnel_report(request: web.Request) -> web.StreamResponse:
    me = await viewer(request)
    query = request.query
    try:
        asked = _asked(query, me)
    except periods.PeriodError as error:
        return await _refused(request, me, _said(me, error.message, **error.values))
    except InvalidInput as error:
        return await _refused(request, me, f"{error.field}: {error}")
    screen = await _screen(request, asked)
    rows = _rows(screen, asked, me)
    on_the_way = [r for r in rows if r.stage.kind is not StageKind.LOST]
    chart = funnel_chart(
        [
            (r.stage.stage_id, r.name, r.stage.kind.value, r.stage.reached, r.stage.to_next)
            for r in on_the_way
        ]
    )
    gettext = translations(me.language).gettext
    return await page(
        request,
        "funnel.html",
        section="funnel",
        error=None,
        choices=periods.CHOICES,
        chosen=asked.period.key,
        start=asked.period.first.isoformat(),
        end=asked.period.last.isoformat(),
        asked=asked,
        shown_first=asked.period.since,
        shown_last=periods.local_midnight(asked.period.last, me.fmt.zone),
        report=screen.report,
        pipelines=[(p.id, pipeline_name(p, gettext)) for p, _ in screen.choices.pipelines],
        users=screen.choices.users,
        sources=[(s, SOURCE_LABELS[s]) for s in SOURCES],
        rows=rows,
        chart=chart,
        money=lambda m: money(m.amount, m.currency, me.language),
        export_query=request.query_string,
    )


async def _refused(request: web.Request, me: Viewer, message: str) -> web.StreamResponse:
    return await page(
        request,
        "funnel.html",
        status=400,
        section="funnel",
        error=message,
        choices=periods.CHOICES,
        chosen=request.query.get("period", periods.THIS_MONTH),
        start=request.query.get("from", ""),
        end=request.query.get("to", ""),
        asked=None,
        report=None,
        pipelines=[],
        users={},
        sources=[(s, SOURCE_LABELS[s]) for s in SOURCES],
        rows=[],
        chart=None,
        money=None,
        export_query="",
    )


def _said(me: Viewer, text: str, **values: object) -> str:
    translated = translate(me.language, text)
    return translated % values if values else translated


COLUMNS: Final = (
    N_("Stage"),
    N_("Kind"),
    N_("Reached"),
    N_("Went on"),
    N_("To the next stage, %"),
    N_("Won"),
    N_("To won, %"),
    N_("Median days in stage"),
)

Cell = str | int | Decimal | None


async def _table(request: web.Request) -> tuple[Viewer, list[list[Cell]]]:
    """The report as rows of cells: the stages (an amount column per currency), then the
    lost reasons. Bad filters go back to the page, which says what is wrong."""
    me = await viewer(request)
    try:
        asked = _asked(request.query, me)
    except (periods.PeriodError, InvalidInput):
        raise web.HTTPSeeOther("/reports/funnel?" + request.query_string) from None
    screen = await _screen(request, asked)
    rows = _rows(screen, asked, me)
    currencies = sorted({m.currency for r in rows for m in r.stage.amounts})
    header: list[Cell] = [translate(me.language, c) for c in COLUMNS]
    header += [
        translate(me.language, N_("Amount, %(currency)s")) % {"currency": c} for c in currencies
    ]
    table: list[list[Cell]] = [header]
    for row in rows:
        sums = {m.currency: m.amount for m in row.stage.amounts}
        s = row.stage
        table.append(
            [
                row.name,
                translate(me.language, s.kind.value),
                s.reached,
                s.moved_on,
                s.to_next,
                s.won,
                s.to_won,
                s.median_days,
                *(sums.get(c) for c in currencies),
            ]
        )
    reasons = screen.report.funnel.lost_reasons
    if reasons:
        table.append([])
        table.append(
            [translate(me.language, N_("Lost reason")), translate(me.language, N_("Deals"))]
        )
        for reason, count in reasons:
            table.append([reason or translate(me.language, N_("(no reason given)")), count])
    return me, table


def _headers(me: Viewer, extension: str) -> dict[str, str]:
    day = me.fmt.now().strftime("%Y%m%d")
    return {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="funnel-{day}.{extension}"',
    }


@endpoint(
    "The funnel report's table as CSV (UTF-8 with BOM).", permission=Permission.FUNNEL, tag="pages"
)
async def funnel_csv(request: web.Request) -> web.StreamResponse:
    me, table = await _table(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in table:
        writer.writerow(
            ["" if c is None else neutralised(c) if isinstance(c, str) else c for c in row]
        )
    response = web.Response(
        body=(UTF8_BOM + buffer.getvalue()).encode(), headers=_headers(me, "csv")
    )
    response.content_type = "text/csv"
    response.charset = "utf-8"
    return response


@endpoint(
    "The funnel report's table as an Excel workbook (XLSX).",
    permission=Permission.FUNNEL,
    tag="pages",
)
async def funnel_xlsx(request: web.Request) -> web.StreamResponse:
    me, table = await _table(request)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(translate(me.language, N_("Funnel")))
    sheet.column_dimensions["A"].width = 30
    for row in table:
        sheet.append([_xlsx_cell(c) for c in row])
    with tempfile.TemporaryFile() as file:
        await asyncio.to_thread(workbook.save, file)
        return await send_file(request, file, _headers(me, "xlsx"))


def _xlsx_cell(cell: Cell) -> object:
    if isinstance(cell, str):
        return neutralised(ILLEGAL_CHARACTERS_RE.sub("", cell))
    return cell
