"""Spreadsheet import: the column mapping and what one row of a prospect base becomes.

A manager maps the columns of the spreadsheet they already have to card
fields. The mapping is a JSON object (every key but one of the ``phones`` /
``emails`` pair is optional)::

    {
      "name": "Full name",                 # or ["First", "Last"]: joined with a space
      "company": "Company",
      "phones": ["Mobile", "Work"],        # or one column name
      "emails": ["E-mail"],
      "tags": {"column": "Tags", "separator": ";", "add": ["expo-2024"]},
      "consents": {"sms:marketing": "SMS ok", "email:marketing": "Mail ok"},
      "extra": {"city": "City"},
      "region": "RU"                       # for numbers written without a country code
    }

``tags`` may also be just a column name (separator ``;`` or ``,``).

Row rules, decided here so that a dry run and a real run agree:

* a cell may hold several phones or e-mails separated by ``,`` ``;`` or a line break;
* one unreadable phone or e-mail rejects the whole row, naming the value: the
  manager fixes it in the errors file and imports that file again, so nothing
  is dropped without a trace;
* a row with no phone and no e-mail is rejected ("no contact point");
* consent cells read yes/no/true/false/1/0/y/n/да/нет (any case); empty means
  "no record", anything else rejects the row;
* a cell written as ``="…"`` (Excel's way of keeping leading zeros and ``+``
  in CSV) is read as its content; any other cell starting with ``=`` is an
  uncomputed formula and rejects the row rather than landing on a card (and,
  later, in someone's export as live formula).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, NamedTuple

import phonenumbers

from commhub.domain.contacts import (
    CONSENT_CHANNELS,
    ConsentChoice,
    ContactDraft,
    FieldError,
    normalize_tag,
    read_consent,
)
from commhub.domain.emails import EmailError, normalize_email
from commhub.domain.phones import Phone, PhoneError, parse_phone

CARD_FIELDS: Final = (
    "name",
    "company",
    "phones",
    "emails",
    "tags",
    "consents",
    "extra",
    "region",
)
MAX_EXTRA_FIELDS: Final = 100

_YES: Final = frozenset({"yes", "y", "true", "1", "да", "д", "+"})
_NO: Final = frozenset({"no", "n", "false", "0", "нет", "н", "-"})
_MULTI_SPLIT: Final = re.compile(r"[,;\n\r]+")
_EMAIL_SPLIT: Final = re.compile(r"[,;\s]+")


class MappingError(ValueError):
    """The mapping cannot be used with this file; the message names the key or column."""


@dataclass(frozen=True, slots=True)
class ConsentColumn:
    channel: str
    purpose: str
    column: str


@dataclass(frozen=True, slots=True)
class ImportMapping:
    """Which spreadsheet column feeds which card field (see the module docstring)."""

    name: tuple[str, ...] = ()
    company: str | None = None
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    tags_column: str | None = None
    tags_separator: str | None = None
    tags_added: tuple[str, ...] = ()
    consents: tuple[ConsentColumn, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()
    region: str | None = None

    @classmethod
    def from_json(cls, text: str) -> ImportMapping:
        """Read a mapping file's text."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MappingError(
                f"mapping is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: object) -> ImportMapping:
        """Validate a mapping object; every error names the key at fault."""
        if not isinstance(data, Mapping):
            raise MappingError("mapping must be a JSON object of card field → column")
        unknown = [str(key) for key in data if key not in CARD_FIELDS]
        if unknown:
            raise MappingError(
                f"unknown card field {unknown[0]!r} in mapping (known: {', '.join(CARD_FIELDS)})"
            )
        tags_column, separator, added = _tags(data.get("tags"))
        mapping = cls(
            name=_columns(data, "name"),
            company=_column(data.get("company"), "company"),
            phones=_columns(data, "phones"),
            emails=_columns(data, "emails"),
            tags_column=tags_column,
            tags_separator=separator,
            tags_added=added,
            consents=_consents(data.get("consents")),
            extra=_extra(data.get("extra")),
            region=_region(data.get("region")),
        )
        if not mapping.phones and not mapping.emails:
            raise MappingError("map at least one 'phones' or 'emails' column: a contact needs one")
        return mapping

    def with_region(self, region: str) -> ImportMapping:
        """The same mapping reading numbers in ``region`` (a command-line override)."""
        return replace(self, region=_region(region))

    def columns(self) -> list[str]:
        """Every column the mapping reads, once, in mapping order."""
        names = [
            *self.name,
            *([self.company] if self.company else []),
            *self.phones,
            *self.emails,
            *([self.tags_column] if self.tags_column else []),
            *(c.column for c in self.consents),
            *(column for _, column in self.extra),
        ]
        return list(dict.fromkeys(names))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as stored on an import and accepted by :meth:`from_dict`."""
        data: dict[str, Any] = {}
        if self.name:
            data["name"] = list(self.name)
        if self.company:
            data["company"] = self.company
        if self.phones:
            data["phones"] = list(self.phones)
        if self.emails:
            data["emails"] = list(self.emails)
        if self.tags_column or self.tags_added:
            tags: dict[str, Any] = {"add": list(self.tags_added)}
            if self.tags_column:
                tags["column"] = self.tags_column
            if self.tags_separator:
                tags["separator"] = self.tags_separator
            data["tags"] = tags
        if self.consents:
            data["consents"] = {f"{c.channel}:{c.purpose}": c.column for c in self.consents}
        if self.extra:
            data["extra"] = dict(self.extra)
        if self.region:
            data["region"] = self.region
        return data

    def bind(self, header: Sequence[str], *, region: str) -> RowReader:
        """Check the mapping against the file's header row; return the row reader.

        ``region`` is used when the mapping names none.
        """
        index = _header_index(header)

        def find(column: str) -> int:
            found = index.get(column.strip())
            if found is None:
                found = index.get(column.strip().casefold())
            if found is None:
                shown = ", ".join(repr(h) for h in header if h.strip()) or "none"
                raise MappingError(f"column {column!r} is not in the file's header ({shown})")
            if found < 0:
                raise MappingError(f"column {column!r} appears more than once in the header")
            return found

        missing = [
            c
            for c in self.columns()
            if index.get(c.strip(), index.get(c.strip().casefold())) is None
        ]
        if len(missing) > 1:
            shown = ", ".join(repr(h) for h in header if h.strip()) or "none"
            names = ", ".join(repr(c) for c in missing)
            raise MappingError(f"columns {names} are not in the file's header ({shown})")
        for column in self.columns():
            find(column)
        return RowReader(
            region=(self.region or region).upper(),
            name=tuple((c, find(c)) for c in self.name),
            company=(self.company, find(self.company)) if self.company else None,
            phones=tuple((c, find(c)) for c in self.phones),
            emails=tuple((c, find(c)) for c in self.emails),
            tags=(self.tags_column, find(self.tags_column)) if self.tags_column else None,
            tags_split=_tag_splitter(self.tags_separator),
            tags_added=tuple(normalize_tag(t) for t in self.tags_added),
            consents=tuple(
                (ConsentChoice(c.channel, c.purpose, True), c.column, find(c.column))
                for c in self.consents
            ),
            extra=tuple((key, column, find(column)) for key, column in self.extra),
        )


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a row was not imported, in words the manager can act on."""

    reason: str


@dataclass(frozen=True, slots=True)
class RowReader:
    """A mapping bound to a header: column positions resolved, ready for millions of rows.

    Plain tuples only, so that it pickles cheaply to a parsing worker process.
    """

    region: str
    name: tuple[tuple[str, int], ...]
    company: tuple[str, int] | None
    phones: tuple[tuple[str, int], ...]
    emails: tuple[tuple[str, int], ...]
    tags: tuple[str, int] | None
    tags_split: re.Pattern[str]
    tags_added: tuple[str, ...]
    consents: tuple[tuple[ConsentChoice, str, int], ...]
    extra: tuple[tuple[str, str, int], ...]

    def read(self, cells: Sequence[str]) -> ContactDraft | Rejection:
        """One data row → a validated draft, or the first reason it cannot be imported."""
        try:
            return self._draft(cells)
        except FieldError as exc:
            return Rejection(f"column {exc.field!r}: {exc}")

    def _draft(self, cells: Sequence[str]) -> ContactDraft | Rejection:
        phones: dict[str, Phone] = {}
        for column, i in self.phones:
            for text in _MULTI_SPLIT.split(_cell(cells, i, column)):
                text = text.strip()
                if text:
                    phone = _phone(text, self.region, column)
                    phones.setdefault(phone.e164, phone)
        emails: dict[str, None] = {}
        for column, i in self.emails:
            for text in _EMAIL_SPLIT.split(_cell(cells, i, column)):
                if text:
                    emails.setdefault(_email(text, column), None)
        if not phones and not emails:
            columns = ", ".join(repr(c) for c, _ in (*self.phones, *self.emails))
            return Rejection(f"no contact point: no phone or e-mail in {columns}")
        name = " ".join(
            part for part in (" ".join(_cell(cells, i, c).split()) for c, i in self.name) if part
        )
        company = ""
        if self.company is not None:
            column, i = self.company
            company = " ".join(_cell(cells, i, column).split())
        return ContactDraft(
            name=name,
            company=company or None,
            phones=tuple(phones.values()),
            emails=tuple(emails),
            tags=self._tags(cells),
            consents=self._consents(cells),
            extra=self._extra(cells),
        )

    def _tags(self, cells: Sequence[str]) -> tuple[str, ...]:
        tags = dict.fromkeys(self.tags_added)
        if self.tags is not None:
            column, i = self.tags
            for text in self.tags_split.split(_cell(cells, i, column)):
                try:
                    tag = normalize_tag(text)
                except ValueError as exc:
                    raise FieldError(column, f"tag {text[:30]!r}…: {exc}") from None
                if tag:
                    tags.setdefault(tag, None)
        return tuple(tags)

    def _consents(self, cells: Sequence[str]) -> tuple[ConsentChoice, ...]:
        choices: list[ConsentChoice] = []
        for granted, column, i in self.consents:
            answer = _cell(cells, i, column).casefold()
            if not answer:
                continue
            if answer in _YES:
                choices.append(granted)
            elif answer in _NO:
                choices.append(ConsentChoice(granted.channel, granted.purpose, False))
            else:
                raise FieldError(column, f"{answer!r} is not a consent answer (use yes or no)")
        return tuple(choices)

    def _extra(self, cells: Sequence[str]) -> dict[str, str]:
        extra: dict[str, str] = {}
        for key, column, i in self.extra:
            value = _cell(cells, i, column)
            if value:
                extra[key] = value
        return extra


class PackedDraft(NamedTuple):
    """A :class:`ContactDraft` as plain values: what a parsing process sends back.

    Tuples pickle an order of magnitude faster than slotted dataclasses (pickling
    would otherwise cost a worker as much as parsing), and the writing process
    uses them as they arrive instead of rebuilding a dataclass per row.
    """

    name: str
    company: str | None
    phones: tuple[tuple[str, str], ...]
    """(E.164, match key) pairs."""
    emails: tuple[str, ...]
    tags: tuple[str, ...]
    consents: tuple[tuple[str, str, bool], ...]
    """(channel, purpose, granted) answers."""
    extra: dict[str, str]

    @classmethod
    def of(cls, draft: ContactDraft) -> PackedDraft:
        return cls(
            draft.name,
            draft.company,
            tuple((p.e164, p.match_key) for p in draft.phones),
            draft.emails,
            draft.tags,
            tuple((c.channel, c.purpose, c.granted) for c in draft.consents),
            dict(draft.extra),
        )

    @property
    def points(self) -> list[str]:
        """Its phones (E.164) and e-mails: what identifies the person."""
        return [e164 for e164, _ in self.phones] + list(self.emails)


def read_rows(reader: RowReader, rows: Sequence[Sequence[str]]) -> list[PackedDraft | str | None]:
    """:meth:`RowReader.read` over a batch, in a form cheap to send between processes.

    Each row becomes a :class:`PackedDraft`, a rejection reason (``str``), or
    ``None`` for a blank row (nothing to import, nothing lost).
    """
    out: list[PackedDraft | str | None] = []
    for cells in rows:
        if not any(c.strip() for c in cells):
            out.append(None)
            continue
        found = reader.read(cells)
        out.append(found.reason if isinstance(found, Rejection) else PackedDraft.of(found))
    return out


def _cell(cells: Sequence[str], index: int, column: str) -> str:
    """The cell's text, with Excel's ``="…"`` wrapper removed; formulas are refused."""
    if index >= len(cells):
        return ""
    value = cells[index].strip()
    if value.startswith("="):
        if len(value) >= 3 and value[1] == '"' and value[-1] == '"':
            return value[2:-1].strip()
        raise FieldError(column, f"{value[:40]!r} is a spreadsheet formula, not a value")
    return value


def _phone(text: str, region: str, column: str) -> Phone:
    try:
        return parse_phone(text, region)
    except PhoneError as exc:
        raise FieldError(column, f"bad phone: {exc}") from None


def _email(text: str, column: str) -> str:
    try:
        return normalize_email(text)
    except EmailError as exc:
        raise FieldError(column, f"bad e-mail: {exc}") from None


def _header_index(header: Sequence[str]) -> dict[str, int]:
    """Column name → position; exact names first, then case-insensitive; -1 when repeated."""
    index: dict[str, int] = {}
    folded: dict[str, int] = {}
    for position, raw in enumerate(header):
        name = raw.strip()
        if not name:
            continue
        index[name] = -1 if name in index else position
        key = name.casefold()
        folded[key] = -1 if key in folded else position
    for key, position in folded.items():
        index.setdefault(key, position)
    return index


def _column(value: object, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"mapping {key!r} must be a column name")
    return value


def _columns(data: Mapping[Any, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise MappingError(f"mapping {key!r} must be a column name or a list of column names")
    return tuple(str(_column(item, f"{key}[{i}]")) for i, item in enumerate(value))


def _tags(value: object) -> tuple[str | None, str | None, tuple[str, ...]]:
    if value is None:
        return None, None, ()
    if isinstance(value, str):
        return _column(value, "tags"), None, ()
    if not isinstance(value, Mapping):
        raise MappingError("mapping 'tags' must be a column name or {column, separator, add}")
    unknown = [str(k) for k in value if k not in ("column", "separator", "add")]
    if unknown:
        raise MappingError(f"unknown key {unknown[0]!r} in mapping 'tags'")
    separator = value.get("separator")
    if separator is not None and (not isinstance(separator, str) or not separator):
        raise MappingError("mapping 'tags.separator' must be a non-empty string")
    added = value.get("add", [])
    if not isinstance(added, list) or not all(isinstance(t, str) for t in added):
        raise MappingError("mapping 'tags.add' must be a list of tag names")
    for tag in added:
        try:
            normalize_tag(tag)
        except ValueError as exc:
            raise MappingError(f"mapping 'tags.add': {exc}") from None
    column = _column(value.get("column"), "tags.column")
    if column is None and not added:
        raise MappingError("mapping 'tags' needs a 'column' or tags to 'add'")
    return column, separator, tuple(added)


def _tag_splitter(separator: str | None) -> re.Pattern[str]:
    return re.compile("[,;]" if separator is None else re.escape(separator))


def _consents(value: object) -> tuple[ConsentColumn, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise MappingError("mapping 'consents' must map 'channel:purpose' to a column")
    found: list[ConsentColumn] = []
    for index, (key, column) in enumerate(value.items()):
        channel, _, purpose = str(key).partition(":")
        channel = channel.strip().casefold()
        try:
            choice = read_consent(channel, purpose or "marketing", True, index)
        except FieldError as exc:
            raise MappingError(
                f"mapping 'consents' key {key!r}: {exc} (write 'channel:purpose', "
                f"channel one of {', '.join(sorted(CONSENT_CHANNELS))})"
            ) from None
        name = _column(column, f"consents[{key!r}]")
        found.append(ConsentColumn(choice.channel, choice.purpose, str(name)))
    return tuple(found)


def _extra(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise MappingError("mapping 'extra' must map a field name to a column")
    if len(value) > MAX_EXTRA_FIELDS:
        raise MappingError(f"mapping 'extra' may hold at most {MAX_EXTRA_FIELDS} fields")
    pairs: list[tuple[str, str]] = []
    for key, column in value.items():
        name = str(key).strip()
        if not name:
            raise MappingError("mapping 'extra' has an empty field name")
        pairs.append((name, str(_column(column, f"extra[{key!r}]"))))
    return tuple(pairs)


def _region(value: object) -> str | None:
    if value is None:
        return None
    region = str(value).strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise MappingError(f"unknown phone region {value!r} (use an ISO code such as RU, GB)")
    return region
