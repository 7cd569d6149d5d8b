"""Spreadsheet imports over HTTP: upload, follow progress and the queue, cancel, resume,
download the rejected rows."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

from aiohttp import BodyPartReader, web

from commhub.domain.imports import ImportMapping, MappingError
from commhub.domain.roles import Permission
from commhub.models import Import
from commhub.services import import_control, imports
from commhub.services.import_control import ImportView
from commhub.services.spreadsheets import SheetError, open_sheet
from commhub.web.api import schemas
from commhub.web.endpoints import endpoint, json_response, path_id
from commhub.web.keys import DATABASE, JOBS, SETTINGS, principal
from commhub.web.problems import Problem, invalid

ALLOWED_SUFFIXES = (".csv", ".xlsx", ".txt")
CHUNK = 256 * 1024


def import_out(row: Import, place: int | None = None) -> schemas.ImportOut:
    return schemas.ImportOut(
        id=row.id,
        filename=row.filename,
        dry_run=row.dry_run,
        status=row.status,
        rows_done=row.rows_done,
        created=row.created,
        merged=row.merged,
        rejected=row.rejected,
        progress=row.progress,
        error=row.error,
        errors_url=f"/api/v1/imports/{row.id}/errors" if row.errors_path else None,
        created_at=row.created_at,
        finished_at=row.finished_at,
        place=place,
        file_deleted=row.files_deleted_at is not None,
    )


def view_out(found: ImportView) -> schemas.ImportOut:
    return import_out(found.row, found.place)


@endpoint(
    "Upload a CSV or XLSX file with its column mapping; the import runs in the background. "
    "Poll the returned resource for progress and the report.",
    permission=Permission.CONTACTS_IMPORT,
    tag="imports",
    response=schemas.ImportOut,
    status=202,
    content_type="multipart/form-data",
    multipart={
        "file": "The spreadsheet (.csv or .xlsx).",
        "mapping": "JSON object mapping card fields to column names.",
        "dry_run": "'true' to get the report without writing anything.",
    },
)
async def create_import(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if request.content_type != "multipart/form-data":
        raise Problem(415, "upload the file as multipart/form-data")
    folder = settings.imports_dir
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / f"upload-{secrets.token_hex(8)}"
    filename, mapping, dry_run = "", None, False
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                filename = Path(part.filename or "upload.csv").name
                if not filename.lower().endswith(ALLOWED_SUFFIXES):
                    raise invalid("file", "upload a .csv or .xlsx file")
                stored = stored.with_suffix(Path(filename).suffix.lower())
                await _save(part, stored, settings.max_upload_mb * 1024 * 1024)
            elif part.name == "mapping":
                mapping = _mapping(await part.text())
            elif part.name == "dry_run":
                dry_run = (await part.text()).strip().lower() in ("1", "true", "yes", "on")
        if not filename:
            raise invalid("file", "no file was uploaded")
        if mapping is None:
            raise invalid("mapping", "send the column mapping as JSON")
        await asyncio.to_thread(_check_against_header, mapping, stored, settings.phone_region)
    except BaseException:
        stored.unlink(missing_ok=True)
        raise
    found = await imports.queue_upload(
        request.app[DATABASE],
        request.app[JOBS],
        user_id=principal(request).user_id,
        filename=filename,
        stored_path=stored,
        mapping=mapping,
        dry_run=dry_run,
    )
    response = json_response(view_out(found), status=202)
    response.headers["Location"] = f"/api/v1/imports/{found.row.id}"
    return response


async def _save(part: BodyPartReader, target: Path, limit: int) -> None:
    size = 0
    with target.open("wb") as out:
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > limit:
                raise Problem(413, f"files are limited to {limit // (1024 * 1024)} MB")
            out.write(chunk)


def _check_against_header(mapping: dict[str, object], stored: Path, region: str) -> None:
    """Refuse at upload what the job would refuse: a bad mapping or an unreadable file."""
    try:
        parsed = ImportMapping.from_dict(mapping)
    except MappingError as exc:
        raise invalid("mapping", str(exc)) from None
    try:
        with open_sheet(stored) as sheet:
            parsed.bind(sheet.header, region=region)
    except SheetError as exc:
        raise invalid("file", str(exc)) from None
    except MappingError as exc:
        raise invalid("mapping", str(exc)) from None


def _mapping(text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise invalid("mapping", f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise invalid("mapping", "must be a JSON object")
    return value


@endpoint(
    "Progress and report of an import; while it waits, its place in the queue.",
    permission=Permission.CONTACTS_IMPORT,
    tag="imports",
    response=schemas.ImportOut,
)
async def get_import(request: web.Request) -> web.StreamResponse:
    found = await import_control.view(request.app[DATABASE], path_id(request))
    return json_response(view_out(found))


@endpoint(
    "The latest imports, newest first, with the places of those waiting in the queue.",
    permission=Permission.CONTACTS_IMPORT,
    tag="imports",
    response=schemas.ImportList,
)
async def list_imports(request: web.Request) -> web.StreamResponse:
    views = await import_control.recent(request.app[DATABASE])
    return json_response(schemas.ImportList(items=[view_out(v) for v in views]))


@endpoint(
    "Cancel an import that waits, runs or was interrupted; a running one stops within a "
    "second and the rows it imported stay. 409 when it has already ended.",
    permission=Permission.CONTACTS_IMPORT,
    tag="imports",
    response=schemas.ImportOut,
)
async def cancel_import(request: web.Request) -> web.StreamResponse:
    who = principal(request).username
    found = await import_control.cancel(request.app[DATABASE], path_id(request), who=who)
    return json_response(view_out(found))


@endpoint(
    "Resume an interrupted or cancelled import from its last committed row: it joins the "
    "queue again. 409 when it is not stopped or its file is gone.",
    permission=Permission.CONTACTS_IMPORT,
    tag="imports",
    response=schemas.ImportOut,
    status=202,
)
async def resume_import(request: web.Request) -> web.StreamResponse:
    return await _requeue(request, restart=False)


@endpoint(
    "Run a stopped or finished import again from its first row (rows already imported are "
    "merged, not duplicated). 409 when it waits or runs, or its file is gone.",
    permission=Permission.CONTACTS_IMPORT,
    tag="imports",
    response=schemas.ImportOut,
    status=202,
)
async def restart_import(request: web.Request) -> web.StreamResponse:
    return await _requeue(request, restart=True)


async def _requeue(request: web.Request, *, restart: bool) -> web.StreamResponse:
    found = await import_control.queue_again(
        request.app[DATABASE], request.app[JOBS], path_id(request), restart=restart
    )
    return json_response(view_out(found), status=202)


@endpoint(
    "The rejected rows of an import as CSV: row number, reason, and the original cells.",
    permission=Permission.CONTACTS_IMPORT,
    tag="imports",
    content_type="text/csv",
)
async def get_import_errors(request: web.Request) -> web.StreamResponse:
    import_id = path_id(request)
    path = await imports.rejected_rows_file(request.app[DATABASE], import_id)
    if path is None:
        raise Problem(404, "this import has no rejected-rows file")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="import-{import_id}-rejected.csv"',
        },
    )
