"""What the deal pages read from forms and query strings, and how they show money.

The list, the board and the deal page share these, so a filter or a date
typed on one page means the same on the others.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from babel.numbers import format_currency

from commhub.domain.deals import DealSource, StageKind
from commhub.domain.identifiers import parse_id
from commhub.domain.moments import RANGE_TEXT, day_in_range
from commhub.services.deal_console import OUTCOMES, DealFilter, Reached
from commhub.services.errors import InvalidInput

STATES: Final = ("open", StageKind.WON.value, StageKind.LOST.value)
SOURCES: Final = tuple(s.value for s in DealSource)


def money(amount: Decimal, currency: str, language: str) -> str:
    """An amount in its currency, written the viewer's way (exact: Babel formats Decimals)."""
    return format_currency(amount, currency, locale=language)


def read_id(value: str, field: str) -> int | None:
    """An id typed in a field; empty is none, anything else not an id is refused."""
    text = value.strip()
    if not text:
        return None
    found = parse_id(text)
    if found is None:
        raise InvalidInput(field, f"{text[:40]!r} is not an id")
    return found


def read_day(value: str, field: str) -> date | None:
    text = value.strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(field, f"{text[:40]!r} is not a date (YYYY-MM-DD)") from None
    if not day_in_range(day):
        raise InvalidInput(field, f"{text} is not a date {RANGE_TEXT}")
    return day


def day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def deal_filter(query: dict[str, str], zone: ZoneInfo, today: date) -> DealFilter:
    """The list's filter from its query string, the funnel drill-down's included.

    ``from`` and ``to`` are days in the viewer's zone; ``to`` takes in the whole day.
    """
    source = query.get("source", "").strip() or None
    if source is not None and source not in SOURCES:
        raise InvalidInput("source", f"unknown source {source[:40]!r}")
    state = query.get("state", "").strip() or None
    if state is not None and state not in STATES:
        raise InvalidInput("state", f"unknown state {state[:40]!r}")
    reached = None
    reached_stage = read_id(query.get("reached", ""), "reached")
    if reached_stage is not None:
        outcome = query.get("outcome", "").strip() or "reached"
        if outcome not in OUTCOMES:
            raise InvalidInput("outcome", f"outcome is one of {', '.join(OUTCOMES)}")
        since = read_day(query.get("from", ""), "from")
        until = read_day(query.get("to", ""), "to")
        if since is None or until is None:
            raise InvalidInput("from", "a stage reached needs the period's from and to days")
        if until < since:
            raise InvalidInput("to", "the period ends before it starts")
        reached = Reached(
            reached_stage,
            day_start(since, zone),
            day_start(until + timedelta(days=1), zone),
            outcome,
        )
    return DealFilter(
        pipeline_id=read_id(query.get("pipeline", ""), "pipeline"),
        stage_id=read_id(query.get("stage", ""), "stage"),
        owner_id=read_id(query.get("owner", ""), "owner"),
        source=source,
        state=state,
        text=query.get("q", "").strip()[:200] or None,
        overdue_on=today if query.get("overdue") else None,
        reached=reached,
        created=_days(query, "created", zone),
        closed=_days(query, "closed", zone),
    )


def _days(query: dict[str, str], name: str, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """``<name>_from`` to ``<name>_to`` (whole days in the viewer's zone), if given."""
    first = read_day(query.get(f"{name}_from", ""), f"{name}_from")
    last = read_day(query.get(f"{name}_to", ""), f"{name}_to")
    if first is None and last is None:
        return None
    if first is None or last is None:
        raise InvalidInput(f"{name}_from", "give both days of the period")
    if last < first:
        raise InvalidInput(f"{name}_to", "the period ends before it starts")
    return day_start(first, zone), day_start(last + timedelta(days=1), zone)
