"""A streaming XLSX reader that yields only the cells that exist, within fixed limits.

A workbook is a zip of XML parts; this reads the first worksheet's part as
a stream through expat, one 64 KiB piece at a time, and never builds a tree.
So a sheet whose ``<dimension>`` claims column XFD costs nothing (cells that
are not there are not padded in), rows after the last non-empty one are
never yielded, and memory stays flat whatever the file claims. Limits,
each reported with the row and column at fault:

* a cell holds at most :data:`MAX_CELL_CHARS` characters (Excel's own limit),
* a row at most :data:`MAX_COLUMNS` columns and :data:`MAX_ROW_CHARS` characters,
* at most :data:`MAX_ROWS` rows (Excel's own limit).

Shared strings are kept in memory up to :data:`SHARED_IN_MEMORY_CHARS`, the
rest in a scratch SQLite file. Any DTD is refused, so entity expansion
("billion laughs") and external entities cannot happen.
"""

from __future__ import annotations

import posixpath
import sqlite3
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, Final
from xml.parsers import expat

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format
from openpyxl.utils.cell import get_column_letter
from openpyxl.utils.datetime import from_excel

from commhub.services.errors import ServiceError

MAX_CELL_CHARS: Final = 32_767
MAX_COLUMNS: Final = 1_024
MAX_ROW_CHARS: Final = 64 * 1024
MAX_ROWS: Final = 1_048_576
MAX_PART_BYTES: Final = 64 * 1024 * 1024
"""The workbook, relationships and styles parts are small; more than this is not a workbook."""
SHARED_IN_MEMORY_CHARS: Final = 8 * 1024 * 1024
READ_BYTES: Final = 64 * 1024
_SPILL_ROWS: Final = 5_000
_DATE_IDS: Final = frozenset(
    i for i, code in BUILTIN_FORMATS.items() if isinstance(code, str) and is_date_format(code)
)


class XlsxError(ServiceError):
    """The workbook cannot be read, or breaks a limit; the message says where."""


def column_letters(index: int) -> str:
    """``0`` → ``A``; indexes past Excel's last column are written as numbers."""
    return get_column_letter(index + 1) if index < 16_384 else f"#{index + 1}"


def _column_index(ref: str) -> int:
    index = 0
    for char in ref:
        if "A" <= char <= "Z":
            index = index * 26 + ord(char) - 64
        elif "a" <= char <= "z":
            index = index * 26 + ord(char) - 96
        else:
            break
    return index - 1


def _local(name: str) -> str:
    return name.rpartition(":")[2] if ":" in name else name


def _refuse_dtd(*_: object) -> None:
    raise XlsxError("the workbook's XML declares a DTD, which a workbook never needs")


def _parser() -> Any:
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
    return parser


def _feed(
    book: zipfile.ZipFile, member: str, parser: Any, *, limit: int | None = None
) -> Iterator[float]:
    """Feed ``member`` to ``parser`` piece by piece; yields the fraction read after each piece."""
    info = book.getinfo(member)
    total = max(info.file_size, 1)
    done = 0
    try:
        with book.open(info) as part:
            while piece := part.read(READ_BYTES):
                done += len(piece)
                if limit is not None and done > limit:
                    raise XlsxError(f"{member} is over {limit // (1024 * 1024)} MB: not a workbook")
                parser.Parse(piece, False)
                yield min(done / total, 1.0)
            parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise XlsxError(
            f"the workbook's XML is malformed ({member}, line {exc.lineno}, "
            f"column {exc.offset}: {expat.errors.messages.get(exc.code, exc)})"
        ) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise XlsxError(f"the workbook is damaged ({member}: {exc})") from None
    yield 1.0


def _parse(
    book: zipfile.ZipFile, member: str, start: Callable[[str, dict[str, str]], None]
) -> None:
    parser = _parser()
    parser.StartElementHandler = lambda name, attrs: start(_local(name), attrs)
    for _ in _feed(book, member, parser, limit=MAX_PART_BYTES):
        pass


class SharedStrings:
    """The workbook's shared strings by index; ``None`` marks one over the cell limit."""

    def __init__(self) -> None:
        self._memory: list[str | None] = []
        self._chars = 0
        self._lengths: dict[int, int] = {}
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[int, str | None]] = []
        self.count = 0

    def add(self, text: str | None, length: int) -> None:
        index = self.count
        self.count += 1
        if text is None:
            self._lengths[index] = length
        if self._db is None and self._chars + length <= SHARED_IN_MEMORY_CHARS:
            self._memory.append(text)
            self._chars += len(text or "")
            return
        if self._db is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="commhub-xlsx-")
            # Filled while the workbook opens, read by whichever thread reads the rows (one at
            # a time, never concurrently).
            self._db = sqlite3.connect(
                Path(self._scratch.name) / "strings.db", check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("CREATE TABLE s (i INTEGER PRIMARY KEY, t TEXT)")
        self._pending.append((index, text))
        if len(self._pending) >= _SPILL_ROWS:
            self.flush()

    def flush(self) -> None:
        if self._db is not None and self._pending:
            self._db.executemany("INSERT INTO s VALUES (?, ?)", self._pending)
            self._pending.clear()

    def get(self, index: int) -> str | None:
        """The text at ``index`` (None when over the limit); IndexError when there is none."""
        if 0 <= index < len(self._memory):
            return self._memory[index]
        if self._db is None or not 0 <= index < self.count:
            raise IndexError(index)
        found = self._db.execute("SELECT t FROM s WHERE i = ?", (index,)).fetchone()
        if found is None:
            raise IndexError(index)
        return str(found[0]) if found[0] is not None else None

    def length(self, index: int) -> int:
        return self._lengths.get(index, 0)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


def _read_shared(book: zipfile.ZipFile, member: str | None) -> SharedStrings:
    strings = SharedStrings()
    if member is None:
        return strings
    parser = _parser()
    parts: list[str] = []
    length = 0
    depth = {"si": False, "t": False, "rPh": False}

    def start(name: str, _attrs: dict[str, str]) -> None:
        nonlocal length
        name = _local(name)
        if name == "si":
            depth["si"] = True
            parts.clear()
            length = 0
        elif name in ("t", "rPh"):
            depth[name] = True

    def end(name: str) -> None:
        name = _local(name)
        if name == "si":
            depth["si"] = False
            text = "".join(parts) if length <= MAX_CELL_CHARS else None
            strings.add(text, length)
            parts.clear()
        elif name in ("t", "rPh"):
            depth[name] = False

    def data(text: str) -> None:
        nonlocal length
        if depth["si"] and depth["t"] and not depth["rPh"]:
            length += len(text)
            if length <= MAX_CELL_CHARS:
                parts.append(text)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    try:
        for _ in _feed(book, member, parser):
            pass
        strings.flush()
    except BaseException:
        strings.close()
        raise
    return strings


def _date_styles(book: zipfile.ZipFile, member: str | None) -> frozenset[int]:
    """Indexes of the cell styles that show a number as a date or time."""
    if member is None:
        return frozenset()
    custom: dict[int, str] = {}
    formats: list[int] = []
    inside = {"cellXfs": False}

    def start(name: str, attrs: dict[str, str]) -> None:
        if name == "numFmt":
            custom[_int(attrs.get("numFmtId"), -1)] = attrs.get("formatCode", "")
        elif name == "cellXfs":
            inside["cellXfs"] = True
        elif name == "xf" and inside["cellXfs"]:
            formats.append(_int(attrs.get("numFmtId"), 0))
        elif name in ("cellStyleXfs", "dxfs", "cellStyles"):
            inside["cellXfs"] = False

    _parse(book, member, start)
    return frozenset(
        i
        for i, fmt in enumerate(formats)
        if fmt in _DATE_IDS or (fmt in custom and is_date_format(custom[fmt]))
    )


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _parts(book: zipfile.ZipFile) -> tuple[str, str | None, str | None]:
    """The first worksheet's part, and the shared strings' and styles' parts if any."""
    names = set(book.namelist())
    sheets: list[str] = []
    targets: dict[str, str] = {}
    kinds: dict[str, str] = {}

    def in_book(name: str, attrs: dict[str, str]) -> None:
        if name == "sheet":
            rel = next((v for k, v in attrs.items() if _local(k) == "id"), None)
            if rel:
                sheets.append(rel)

    def in_rels(name: str, attrs: dict[str, str]) -> None:
        if name == "Relationship" and "Id" in attrs and "Target" in attrs:
            target = attrs["Target"]
            path = target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)
            targets[attrs["Id"]] = posixpath.normpath(path)
            kinds[attrs.get("Type", "").rpartition("/")[2]] = targets[attrs["Id"]]

    if "xl/workbook.xml" in names:
        _parse(book, "xl/workbook.xml", in_book)
    if "xl/_rels/workbook.xml.rels" in names:
        _parse(book, "xl/_rels/workbook.xml.rels", in_rels)
    sheet = next((targets[r] for r in sheets if targets.get(r) in names), None)
    if sheet is None:
        found = sorted(n for n in names if n.startswith("xl/worksheets/") and n.endswith(".xml"))
        if not found:
            raise XlsxError("the workbook has no worksheet")
        sheet = found[0]
    shared = kinds.get("sharedStrings")
    if shared not in names:
        shared = "xl/sharedStrings.xml" if "xl/sharedStrings.xml" in names else None
    styles = kinds.get("styles")
    if styles not in names:
        styles = "xl/styles.xml" if "xl/styles.xml" in names else None
    return sheet, shared, styles


class Workbook:
    """An open workbook: :meth:`rows` streams its first worksheet as ``(row number, cells)``."""

    def __init__(self, path: Path) -> None:
        self.fraction_read = 0.0
        self._streams: list[Generator[tuple[int, list[str]], None, None]] = []
        try:
            self._book = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise XlsxError(f"not a readable .xlsx workbook: {exc}") from None
        try:
            self._sheet, shared, styles = _parts(self._book)
            self._dates = _date_styles(self._book, styles)
            self._strings = _read_shared(self._book, shared)
        except (KeyError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            self._book.close()
            raise XlsxError(f"the workbook is damaged: {exc}") from None
        except BaseException:
            self._book.close()
            raise

    def close(self) -> None:
        for stream in self._streams:
            stream.close()
        self._strings.close()
        self._book.close()

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """Non-empty rows in order; blank rows between them as ``[]``, none after the last."""
        stream = self._rows()
        self._streams.append(stream)
        return stream

    def _rows(self) -> Generator[tuple[int, list[str]], None, None]:
        reader = _SheetReader(self._strings, self._dates)
        parser = _parser()
        parser.StartElementHandler = reader.start
        parser.EndElementHandler = reader.end
        parser.CharacterDataHandler = reader.data
        last = 0
        for fraction in _feed(self._book, self._sheet, parser):
            self.fraction_read = fraction
            ready, reader.ready = reader.ready, []
            for number, cells in ready:
                for blank in range(last + 1, number):
                    yield blank, []
                last = number
                yield number, cells


class _SheetReader:
    """expat handlers for a worksheet part; complete non-empty rows collect in :attr:`ready`."""

    def __init__(self, strings: SharedStrings, dates: frozenset[int]) -> None:
        self.ready: list[tuple[int, list[str]]] = []
        self._strings = strings
        self._dates = dates
        self._row = 0
        self._cells: dict[int, str] = {}
        self._chars = 0
        self._column = -1
        self._kind = "n"
        self._style = 0
        self._text: list[str] | None = None
        self._capture = False
        self._length = 0
        self._in_inline = False
        self._in_phonetic = False

    def _where(self, column: int | None = None) -> str:
        where = f"row {self._row}"
        return where if column is None else f"{where}, column {column_letters(column)}"

    def start(self, name: str, attrs: dict[str, str]) -> None:
        name = _local(name)
        if name == "c":
            ref = attrs.get("r")
            self._column = _column_index(ref) if ref else self._column + 1
            self._kind = attrs.get("t", "n")
            self._style = _int(attrs.get("s"), 0)
            self._text = None
        elif name == "v":
            self._text = []
            self._length = 0
            self._capture = True
        elif name == "t" and self._in_inline:
            self._capture = True
        elif name == "is":
            self._in_inline = True
            self._text = []
            self._length = 0
        elif name == "rPh":
            self._in_phonetic = True
        elif name == "row":
            number = _int(attrs.get("r"), self._row + 1)
            if number <= self._row or number > MAX_ROWS:
                raise XlsxError(f"row {number} is out of order or past row {MAX_ROWS}")
            self._row = number
            self._cells = {}
            self._chars = 0
            self._column = -1

    def data(self, text: str) -> None:
        if not self._capture or self._text is None or self._in_phonetic:
            return
        self._length += len(text)
        if self._length > MAX_CELL_CHARS:
            raise XlsxError(
                f"{self._where(self._column)}: the cell holds more than {MAX_CELL_CHARS:,} "
                "characters (the most a spreadsheet cell may hold)"
            )
        self._text.append(text)

    def end(self, name: str) -> None:
        name = _local(name)
        if name == "c":
            if self._text is not None:
                self._keep(self._value("".join(self._text)))
            self._text = None
            self._length = 0
            self._in_inline = False
        elif name in ("v", "t"):
            self._capture = False
        elif name == "rPh":
            self._in_phonetic = False
        elif name == "row":
            if self._cells:
                width = max(self._cells) + 1
                cells = [""] * width
                for index, value in self._cells.items():
                    cells[index] = value
                self.ready.append((self._row, cells))
            self._cells = {}

    def _keep(self, value: str) -> None:
        if not value:
            return
        column = self._column
        if column < 0 or column >= MAX_COLUMNS:
            raise XlsxError(
                f"{self._where(column)}: a row may have at most {MAX_COLUMNS:,} columns"
            )
        self._chars += len(value)
        if self._chars > MAX_ROW_CHARS:
            raise XlsxError(
                f"{self._where(column)}: the row holds more than {MAX_ROW_CHARS:,} characters"
            )
        self._cells[column] = value

    def _value(self, raw: str) -> str:
        kind = self._kind
        if kind == "s":
            return self._shared(raw)
        if kind == "b":
            return "yes" if raw.strip() in ("1", "true") else "no"
        if kind in ("str", "inlineStr", "e"):
            return raw
        return self._number(raw.strip())

    def _shared(self, raw: str) -> str:
        try:
            index = int(raw)
            text = self._strings.get(index)
        except (ValueError, IndexError):
            raise XlsxError(
                f"{self._where(self._column)}: refers to shared string {raw[:20]!r}, "
                "which the workbook does not have"
            ) from None
        if text is None:
            raise XlsxError(
                f"{self._where(self._column)}: the cell holds "
                f"{self._strings.length(index):,} characters; a cell may hold at most "
                f"{MAX_CELL_CHARS:,}"
            )
        return text

    def _number(self, raw: str) -> str:
        if not raw:
            return ""
        try:
            number = float(raw)
        except ValueError:
            return raw
        if self._style in self._dates:
            try:
                return from_excel(number).isoformat()  # type: ignore[no-any-return]
            except (ValueError, OverflowError, TypeError):
                return raw
        if number.is_integer() and abs(number) < 1e16:
            return str(int(number))
        return repr(number)
