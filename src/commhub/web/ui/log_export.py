"""The filtered interaction log as a CSV or XLSX download.

Rows come a chunk at a time from the log service (each chunk read in its own
short session), so a large export neither holds a database connection while
a slow client downloads nor builds the whole file in memory (the CSV
streams; the XLSX, a zip, is built in a temporary file off the event loop).
Every text cell goes through :func:`neutralised` against formula injection.
"""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import IO, Final

from aiohttp import web
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from commhub.domain.interactions import InteractionFilter
from commhub.domain.roles import Permission
from commhub.domain.spreadsheet_cells import neutralised
from commhub.models import Interaction
from commhub.services.database import Database
from commhub.services.log import export_chunks
from commhub.web.endpoints import endpoint
from commhub.web.keys import DATABASE
from commhub.web.ui.formatting import Formats
from commhub.web.ui.i18n import N_
from commhub.web.ui.log_filters import FilterError, filters_from, form_values, link
from commhub.web.ui.render import SECURITY_HEADERS, Viewer, translate, viewer

EXPORT_LIMIT: Final = 100_000
"""The most rows one export holds; the log page says when the filters match more."""
CHUNK_ROWS: Final = 1_000
FILE_CHUNK_BYTES: Final = 256 * 1024
TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
XLSX_TIME_FORMAT: Final = "yyyy-mm-dd hh:mm:ss"
XLSX_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UTF8_BOM: Final = "\ufeff"

COLUMNS: Final = (
    (N_("Time"), 20),
    (N_("Channel"), 9),
    (N_("Direction"), 9),
    (N_("Status"), 12),
    (N_("Contact"), 28),
    (N_("Contact ID"), 10),
    (N_("Number or address"), 24),
    (N_("Operator"), 20),
    (N_("Queue"), 12),
    (N_("Duration (s)"), 12),
    (N_("Subject"), 36),
    (N_("Summary"), 60),
)
"""Header text (translated when written) and XLSX column width, in column order."""

Cell = str | int | datetime | None
Row = tuple[Cell, ...]


@endpoint(
    "The interaction log's filtered rows as CSV (UTF-8 with BOM).",
    permission=Permission.INTERACTIONS_EXPORT,
    tag="pages",
)
async def export_csv(request: web.Request) -> web.StreamResponse:
    me, filters = await _read(request)
    response = web.StreamResponse(headers=_download_headers(me, "csv"))
    response.content_type = "text/csv"
    response.charset = "utf-8"
    await response.prepare(request)
    await response.write((UTF8_BOM + _csv_lines([_header(me)])).encode())
    async for rows in _rows(request.app[DATABASE], filters, me.fmt):
        await response.write(_csv_lines(rows).encode())
    await response.write_eof()
    return response


@endpoint(
    "The interaction log's filtered rows as an Excel workbook (XLSX).",
    permission=Permission.INTERACTIONS_EXPORT,
    tag="pages",
)
async def export_xlsx(request: web.Request) -> web.StreamResponse:
    me, filters = await _read(request)
    workbook = Workbook(write_only=True)
    sheet: WriteOnlyWorksheet = workbook.create_sheet(translate(me.language, N_("Interactions")))
    for index, (_, width) in enumerate(COLUMNS):
        sheet.column_dimensions[chr(ord("A") + index)].width = width
    sheet.freeze_panes = "A2"
    sheet.append(_header(me))
    async for rows in _rows(request.app[DATABASE], filters, me.fmt):
        await asyncio.to_thread(_append, sheet, rows)
    with tempfile.TemporaryFile() as file:
        await asyncio.to_thread(workbook.save, file)
        return await send_file(request, file, _download_headers(me, "xlsx"))


async def _read(request: web.Request) -> tuple[Viewer, InteractionFilter]:
    """The viewer and the filters; bad filters go back to the log, which says what is wrong."""
    me = await viewer(request)
    values = form_values(request.query)
    try:
        return me, filters_from(values, me.fmt.zone, me.fmt.region)
    except FilterError:
        raise web.HTTPSeeOther(link("/log", values)) from None


async def _rows(db: Database, filters: InteractionFilter, fmt: Formats) -> AsyncIterator[list[Row]]:
    """The matching rows as cells, newest first, a chunk at a time, at most ``EXPORT_LIMIT``."""
    async for chunk in export_chunks(db, filters, limit=EXPORT_LIMIT, chunk_rows=CHUNK_ROWS):
        yield [_row(row, chunk.contact_names, chunk.operators, fmt) for row in chunk.rows]


def _row(row: Interaction, names: dict[int, str], operators: dict[int, str], fmt: Formats) -> Row:
    counterpart = row.from_address if row.direction == "in" else row.to_address
    return (
        fmt.local(row.occurred_at).replace(tzinfo=None),
        row.channel,
        row.direction,
        row.status,
        names.get(row.contact_id, "") if row.contact_id is not None else "",
        row.contact_id,
        fmt.phone(counterpart),
        operators.get(row.operator_id, "") if row.operator_id is not None else "",
        row.queue or "",
        row.duration_s,
        row.subject,
        row.summary,
    )


def _header(me: Viewer) -> Row:
    return tuple(translate(me.language, text) for text, _ in COLUMNS)


def _csv_lines(rows: Sequence[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows([[_csv_cell(cell) for cell in row] for row in rows])
    return buffer.getvalue()


def _csv_cell(cell: Cell) -> str | int:
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.strftime(TIME_FORMAT)
    if isinstance(cell, str):
        return neutralised(cell)
    return cell


def _append(sheet: WriteOnlyWorksheet, rows: Sequence[Row]) -> None:
    for row in rows:
        sheet.append([_xlsx_cell(sheet, cell) for cell in row])


def _xlsx_cell(sheet: WriteOnlyWorksheet, cell: Cell) -> object:
    if isinstance(cell, datetime):
        moment = WriteOnlyCell(sheet, value=cell)
        moment.number_format = XLSX_TIME_FORMAT
        return moment
    if isinstance(cell, str):
        # Control characters other than tab and line breaks are not allowed in XLSX.
        return neutralised(ILLEGAL_CHARACTERS_RE.sub("", cell))
    return cell


def _download_headers(me: Viewer, extension: str) -> dict[str, str]:
    day = me.fmt.now().strftime("%Y%m%d")
    return {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="interactions-{day}.{extension}"',
    }


async def send_file(
    request: web.Request, file: IO[bytes], headers: dict[str, str]
) -> web.StreamResponse:
    size = file.tell()
    file.seek(0)
    response = web.StreamResponse(headers=headers)
    response.content_type = XLSX_TYPE
    response.content_length = size
    await response.prepare(request)
    while chunk := await asyncio.to_thread(file.read, FILE_CHUNK_BYTES):
        await response.write(chunk)
    await response.write_eof()
    return response
