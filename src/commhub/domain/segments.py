"""Segments: a rule tree over contacts, read from JSON with every error naming its place.

A rule is a group — ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": rule}`` —
or a condition ``{"field": ..., "op": ..., "value": ...}``; groups nest to any
depth (within :data:`MAX_DEPTH`), so "tagged VIP and (in Moscow or in Kazan)
and not a customer" is one tree. :func:`read_rules` turns the JSON into frozen
nodes or raises :class:`SegmentError` with the path of the bad node
(``rules.all[2].value``), as a marketer needs to find it in the builder.
The store turns the nodes into SQL (``store/segments.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from commhub.domain.money import MAX_AMOUNT

MAX_DEPTH: Final = 10
MAX_NODES: Final = 200
MAX_TEXT: Final = 300
CHANNELS: Final = ("call", "sms", "email")


class SegmentError(ValueError):
    """A rule that cannot be read; ``path`` says where it is in the tree."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


class Field(StrEnum):
    NAME = "name"
    COMPANY = "company"
    CITY = "city"
    TIME_ZONE = "time_zone"
    OWNER = "owner"
    EXTRA = "extra"
    """A contact's own field: ``{"field": "extra", "key": "tariff", ...}``."""
    CREATED = "created"
    TAG = "tag"
    CONSENT = "consent"
    INTERACTION = "interaction"
    MISSED_CALL = "missed_call"
    DEAL = "deal"
    IMPORT = "import"
    CAMPAIGN = "campaign"
    LIST = "list"
    """Member of a static list (a segment of kind ``static``)."""


TEXT_OPS: Final = ("contains", "equals", "starts_with", "empty")
OPS: Final[dict[Field, tuple[str, ...]]] = {
    Field.NAME: TEXT_OPS,
    Field.COMPANY: TEXT_OPS,
    Field.CITY: TEXT_OPS,
    Field.EXTRA: TEXT_OPS,
    Field.TIME_ZONE: ("equals", "empty"),
    Field.OWNER: ("equals", "empty"),
    Field.CREATED: ("before", "after", "within_days"),
    Field.TAG: ("has",),
    Field.CONSENT: ("granted", "withdrawn", "none"),
    Field.INTERACTION: (
        "any_after",
        "none_after",
        "last_before",
        "count_at_least",
        "count_at_most",
    ),
    Field.MISSED_CALL: ("any_after",),
    Field.DEAL: ("open", "won_after", "lost_after", "any"),
    Field.IMPORT: ("equals",),
    Field.CAMPAIGN: ("received", "bounced", "replied"),
    Field.LIST: ("member",),
}


@dataclass(frozen=True, slots=True)
class Condition:
    """One test of a contact. Which of the optional parts are set depends on ``field``."""

    field: Field
    op: str
    text: str = ""
    number: int | None = None
    moment: datetime | None = None
    key: str = ""
    channel: str = ""
    """``call``/``sms``/``email`` (consent, interaction); empty: any channel."""
    direction: str = ""
    """``in``/``out`` (interaction); empty: either."""
    purpose: str = ""
    since: datetime | None = None
    """The start of the period counted (interaction counts)."""
    pipeline_id: int | None = None
    stage_id: int | None = None
    amount_at_least: str = ""


@dataclass(frozen=True, slots=True)
class Group:
    kind: str
    """``all``, ``any`` or ``not`` (one child)."""
    children: tuple[Node, ...]


Node = Group | Condition


def read_rules(data: Any) -> Node:
    """The tree in ``data`` (parsed JSON), or :class:`SegmentError` naming the bad node."""
    counter = [0]
    return _node(data, "rules", 1, counter)


def _node(data: Any, path: str, depth: int, counter: list[int]) -> Node:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise SegmentError(path, f"a segment holds at most {MAX_NODES} conditions and groups")
    if depth > MAX_DEPTH:
        raise SegmentError(path, f"groups nest at most {MAX_DEPTH} deep")
    if not isinstance(data, dict):
        raise SegmentError(path, "a rule is an object: a group (all, any, not) or a condition")
    groups = [k for k in ("all", "any", "not") if k in data]
    if len(groups) > 1 or (groups and len(data) != 1):
        raise SegmentError(path, "a group has exactly one key: all, any or not")
    if groups:
        kind = groups[0]
        if kind == "not":
            return Group("not", (_node(data["not"], f"{path}.not", depth + 1, counter),))
        items = data[kind]
        if not isinstance(items, list) or not items:
            raise SegmentError(f"{path}.{kind}", "a list of at least one rule")
        return Group(
            kind,
            tuple(
                _node(item, f"{path}.{kind}[{i}]", depth + 1, counter)
                for i, item in enumerate(items)
            ),
        )
    return _condition(data, path)


def _condition(data: dict[str, Any], path: str) -> Condition:
    unknown = set(data) - {"field", "op", "value", "key"}
    if unknown:
        raise SegmentError(path, f"unknown keys: {', '.join(sorted(unknown))}")
    try:
        field = Field(str(data.get("field")))
    except ValueError:
        known = ", ".join(f.value for f in Field)
        raise SegmentError(f"{path}.field", f"one of: {known}") from None
    op = data.get("op")
    if op not in OPS[field]:
        raise SegmentError(f"{path}.op", f"for {field.value}: one of {', '.join(OPS[field])}")
    value = data.get("value")
    where = f"{path}.value"
    reader = _READERS[field]
    found = reader(op, value, where)
    if field is Field.EXTRA:
        key = data.get("key")
        if not isinstance(key, str) or not key.strip() or len(key) > 100:
            raise SegmentError(f"{path}.key", "the name of the contact's field")
        return Condition(field=field, op=op, text=found.text, key=key.strip())
    return Condition(**{**_plain(found), "field": field, "op": op})


def _plain(condition: Condition) -> dict[str, Any]:
    return {name: getattr(condition, name) for name in Condition.__slots__}


def _text(op: str, value: Any, where: str) -> Condition:
    if op == "empty":
        return Condition(Field.NAME, op)
    if not isinstance(value, str) or not value.strip():
        raise SegmentError(where, "some text")
    if len(value) > MAX_TEXT:
        raise SegmentError(where, f"at most {MAX_TEXT} characters")
    return Condition(Field.NAME, op, text=value.strip())


def _whole(value: Any, where: str, *, low: int = 0, high: int = 10**9) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SegmentError(where, f"a whole number from {low} to {high}")
    return value


def _moment(value: Any, where: str) -> datetime:
    """A date (the start of that day, UTC) or a moment with its zone."""
    if not isinstance(value, str):
        raise SegmentError(where, "a date (2026-11-01) or a moment (2026-11-01T10:00:00Z)")
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SegmentError(where, f"{value!r} is not a date or a moment") from None
    if moment.tzinfo is None:
        raise SegmentError(where, "give the moment's time zone, e.g. 2026-11-01T10:00:00Z")
    if not 1970 <= moment.year <= 2100:
        raise SegmentError(where, "between 1970 and 2100")
    return moment


def _object(value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SegmentError(where, f"an object with: {', '.join(sorted(allowed))}")
    unknown = set(value) - allowed
    if unknown:
        raise SegmentError(where, f"unknown keys: {', '.join(sorted(unknown))}")
    return value


def _channel(value: Any, where: str, *, required: bool) -> str:
    if value in (None, "", "any") and not required:
        return ""
    if value not in CHANNELS:
        raise SegmentError(where, f"one of: {', '.join(CHANNELS)}")
    return str(value)


def _time_zone(op: str, value: Any, where: str) -> Condition:
    if op == "empty":
        return Condition(Field.TIME_ZONE, op)
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise SegmentError(where, "an IANA zone name, e.g. Europe/Moscow")
    return Condition(Field.TIME_ZONE, op, text=value.strip())


def _owner(op: str, value: Any, where: str) -> Condition:
    if op == "empty":
        return Condition(Field.OWNER, op)
    return Condition(Field.OWNER, op, number=_whole(value, where, low=1, high=2**62))


def _created(op: str, value: Any, where: str) -> Condition:
    if op == "within_days":
        return Condition(Field.CREATED, op, number=_whole(value, where, low=1, high=36_500))
    return Condition(Field.CREATED, op, moment=_moment(value, where))


def _tag(op: str, value: Any, where: str) -> Condition:
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise SegmentError(where, "a tag's name")
    return Condition(Field.TAG, op, text=value.strip())


def _consent(op: str, value: Any, where: str) -> Condition:
    found = _object(value, where, {"channel", "purpose"})
    purpose = found.get("purpose", "marketing")
    if not isinstance(purpose, str) or not purpose.strip() or len(purpose) > 50:
        raise SegmentError(f"{where}.purpose", "a purpose, e.g. marketing")
    return Condition(
        Field.CONSENT,
        op,
        channel=_channel(found.get("channel"), f"{where}.channel", required=True),
        purpose=purpose.strip().casefold(),
    )


def _interaction(op: str, value: Any, where: str) -> Condition:
    found = _object(value, where, {"channel", "direction", "date", "since", "count"})
    direction = found.get("direction", "")
    if direction not in ("", "any", "in", "out"):
        raise SegmentError(f"{where}.direction", "in, out or any")
    channel = _channel(found.get("channel"), f"{where}.channel", required=False)
    if op in ("count_at_least", "count_at_most"):
        return Condition(
            Field.INTERACTION,
            op,
            channel=channel,
            direction="" if direction == "any" else direction,
            number=_whole(found.get("count"), f"{where}.count", high=1_000_000),
            since=_moment(found.get("since"), f"{where}.since"),
        )
    return Condition(
        Field.INTERACTION,
        op,
        channel=channel,
        direction="" if direction == "any" else direction,
        moment=_moment(found.get("date"), f"{where}.date"),
    )


def _missed(op: str, value: Any, where: str) -> Condition:
    return Condition(Field.MISSED_CALL, op, moment=_moment(value, where))


def _deal(op: str, value: Any, where: str) -> Condition:
    found = _object(value or {}, where, {"pipeline_id", "stage_id", "date", "amount_at_least"})
    pipeline = found.get("pipeline_id")
    stage = found.get("stage_id")
    amount = found.get("amount_at_least", "")
    if amount and (
        not isinstance(amount, str)
        or not amount.isascii()
        or not amount.replace(".", "", 1).isdigit()
        or Decimal(amount) > MAX_AMOUNT
    ):
        raise SegmentError(
            f"{where}.amount_at_least", f'an amount as a string up to {MAX_AMOUNT}, e.g. "1500.00"'
        )
    return Condition(
        Field.DEAL,
        op,
        pipeline_id=None if pipeline is None else _whole(pipeline, f"{where}.pipeline_id", low=1),
        stage_id=None if stage is None else _whole(stage, f"{where}.stage_id", low=1),
        moment=_moment(found.get("date"), f"{where}.date") if op.endswith("_after") else None,
        amount_at_least=str(amount or ""),
    )


def _ident(field: Field) -> Any:
    def read(op: str, value: Any, where: str) -> Condition:
        return Condition(field, op, number=_whole(value, where, low=1, high=2**62))

    return read


_READERS: Final[dict[Field, Any]] = {
    Field.NAME: _text,
    Field.COMPANY: _text,
    Field.CITY: _text,
    Field.EXTRA: _text,
    Field.TIME_ZONE: _time_zone,
    Field.OWNER: _owner,
    Field.CREATED: _created,
    Field.TAG: _tag,
    Field.CONSENT: _consent,
    Field.INTERACTION: _interaction,
    Field.MISSED_CALL: _missed,
    Field.DEAL: _deal,
    Field.IMPORT: _ident(Field.IMPORT),
    Field.CAMPAIGN: _ident(Field.CAMPAIGN),
    Field.LIST: _ident(Field.LIST),
}
