"""Streaming readers for the spreadsheets managers import: CSV in any usual dialect, and XLSX.

Rows are read one at a time, never the whole file, so a million-row base
costs the same memory as a ten-row one. Every reader yields the row number
the manager sees in their spreadsheet program (the header is row 1).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any, Final

from commhub.services.errors import ServiceError
from commhub.services.xlsx import MAX_COLUMNS, MAX_ROW_CHARS, Workbook, XlsxError, column_letters

SAMPLE_BYTES: Final = 64 * 1024
MAX_LINE_CHARS: Final = MAX_ROW_CHARS + 1024
"""A CSV line longer than any accepted row is refused as it is read, before it fills memory."""
DELIMITERS: Final = (",", ";", "\t", "|")
_ZIP_MAGIC: Final = b"PK\x03\x04"


class SheetError(ServiceError):
    """The file cannot be read as a spreadsheet; the message says why (and where)."""


class Sheet:
    """An open spreadsheet: its header and an iterator over ``(row number, cells)``."""

    def __init__(
        self, header: list[str], rows: Iterator[tuple[int, list[str]]], closer: IO[Any] | Any
    ) -> None:
        self.header = header
        self.rows = rows
        self._closer = closer
        self.fraction_read: float = 0.0
        """How much of the file is behind us, 0..1 (an estimate: it drives the progress bar)."""

    def close(self) -> None:
        self._closer.close()

    def __enter__(self) -> Sheet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_sheet(path: Path) -> Sheet:
    """Open ``path`` as CSV or XLSX (told apart by content, not only by name)."""
    try:
        with path.open("rb") as probe:
            head = probe.read(SAMPLE_BYTES)
    except OSError as exc:
        raise SheetError(f"cannot read {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if head.startswith(_ZIP_MAGIC):
        return _open_xlsx(path)
    if suffix in (".xlsx", ".xlsm"):
        raise SheetError(f"{path.name} is not a valid .xlsx file (not a zip archive)")
    if suffix in (".xls", ".ods", ".numbers"):
        raise SheetError(f"{path.name}: only CSV and XLSX can be imported (save it as .xlsx)")
    return _open_csv(path, head)


def detect_encoding(head: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 by BOM; else the usual Windows code page.

    A spreadsheet saved as "CSV" by Excel on a Russian Windows is cp1251, on
    a Western one cp1252; mostly-Cyrillic high bytes tell them apart.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"  # the sample cut a character in two
    high = [b for b in head if b >= 0x80]
    cyrillic = sum(1 for b in high if b >= 0xC0)
    return "cp1251" if cyrillic * 2 > len(high) else "cp1252"


def sniff_delimiter(first_line: str) -> str:
    """The delimiter that splits the header line the most (``,`` when none does)."""
    counts = {d: first_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _open_csv(path: Path, head: bytes) -> Sheet:
    encoding = detect_encoding(head)
    try:
        sample = head.decode(encoding, errors="ignore").lstrip("\ufeff")
    except LookupError:  # pragma: no cover - the codecs above always exist
        raise SheetError(f"unknown encoding {encoding}") from None
    delimiter = sniff_delimiter(sample.splitlines()[0] if sample else "")
    size = max(path.stat().st_size, 1)
    binary = path.open("rb")
    text = io.TextIOWrapper(binary, encoding=encoding, newline="")
    reader = csv.reader(_lines(text), delimiter=delimiter)
    sheet = Sheet([], iter(()), text)
    try:
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error) as exc:
        text.close()
        raise SheetError(f"row 1: cannot read the header as {encoding} CSV: {exc}") from None
    except _LineTooLong:
        text.close()
        raise SheetError(f"row 1: a line is longer than {MAX_LINE_CHARS:,} characters") from None
    if header is None:
        text.close()
        raise SheetError(f"{path.name} is empty: the first row must name the columns")
    try:
        _check_row(1, header)
    except SheetError:
        text.close()
        raise
    sheet.header = [h.strip() for h in header]

    def rows() -> Iterator[tuple[int, list[str]]]:
        number = 1
        try:
            for number, cells in enumerate(reader, start=2):
                if number % 1024 == 0:
                    sheet.fraction_read = min(binary.tell() / size, 1.0)
                _check_row(number, cells)
                yield number, cells
        except UnicodeDecodeError:
            raise SheetError(
                f"row {number + 1}: the file is not {encoding} text past this point "
                "(save it as UTF-8 CSV)"
            ) from None
        except csv.Error as exc:
            raise SheetError(f"row {number + 1}: {exc}") from None
        except _LineTooLong:
            raise SheetError(
                f"row {number + 1}: a line is longer than {MAX_LINE_CHARS:,} characters"
            ) from None
        sheet.fraction_read = 1.0

    sheet.rows = rows()
    return sheet


class _LineTooLong(Exception):
    pass


def _lines(text: IO[str]) -> Iterator[str]:
    """The file's lines, refusing one longer than :data:`MAX_LINE_CHARS` before it is all read."""
    while line := text.readline(MAX_LINE_CHARS):
        if len(line) >= MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            raise _LineTooLong
        yield line


def _check_row(number: int, cells: list[str]) -> None:
    """The limits every spreadsheet row keeps: width, size, and no NUL (PostgreSQL refuses it)."""
    if len(cells) > MAX_COLUMNS:
        raise SheetError(
            f"row {number}, column {column_letters(MAX_COLUMNS)}: "
            f"a row may have at most {MAX_COLUMNS:,} columns"
        )
    chars = 0
    for index, cell in enumerate(cells):
        chars += len(cell)
        if "\x00" in cell:
            raise SheetError(
                f"row {number}, column {column_letters(index)}: the cell holds a NUL byte "
                "(is the file really CSV text? save it as UTF-8 CSV)"
            )
        if chars > MAX_ROW_CHARS:
            raise SheetError(
                f"row {number}, column {column_letters(index)}: "
                f"the row holds more than {MAX_ROW_CHARS:,} characters"
            )


def _open_xlsx(path: Path) -> Sheet:
    try:
        book = Workbook(path)
    except XlsxError as exc:
        raise SheetError(f"{path.name}: {exc}") from None
    values = book.rows()
    try:
        first = next((row for row in values if row[1]), None)
    except XlsxError as exc:
        book.close()
        raise SheetError(f"{path.name}: {exc}") from None
    if first is None:
        book.close()
        raise SheetError(f"{path.name} is empty: the first row must name the columns")
    sheet = Sheet([h.strip() for h in first[1]], iter(()), book)

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for number, cells in values:
                sheet.fraction_read = book.fraction_read
                yield number, cells
        except XlsxError as exc:
            raise SheetError(str(exc)) from None
        sheet.fraction_read = 1.0

    sheet.rows = rows()
    return sheet


def cell_text(value: object) -> str:
    """A cell's value as the manager sees it: ``79161234567`` not ``79161234567.0``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)
