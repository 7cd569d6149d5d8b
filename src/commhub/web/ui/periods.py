"""The periods the dashboard reports on: whole local days in the viewer's time zone.

A manager in Novosibirsk asking for "yesterday" means their own yesterday,
midnight to midnight there, not UTC's. Everything here is pure (``today`` and
the zone are passed in) so the edges — month starts, DST changes — are unit-tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from commhub.domain.moments import FIRST_DAY, LAST_DAY, day_in_range
from commhub.web.ui.i18n import N_

TODAY: Final = "today"
YESTERDAY: Final = "yesterday"
LAST_7_DAYS: Final = "7d"
LAST_30_DAYS: Final = "30d"
THIS_MONTH: Final = "month"
CUSTOM: Final = "custom"

CHOICES: Final = (
    (TODAY, N_("Today")),
    (YESTERDAY, N_("Yesterday")),
    (LAST_7_DAYS, N_("Last 7 days")),
    (LAST_30_DAYS, N_("Last 30 days")),
    (THIS_MONTH, N_("This month")),
    (CUSTOM, N_("Custom dates")),
)
"""Each period a manager can pick, with its label (English source text)."""

LONGEST_DAYS: Final = 366
"""A custom range may cover a year (a leap year's worth), no more."""


@dataclass(frozen=True, slots=True)
class Period:
    """Local days ``first`` to ``last`` inclusive, as the UTC-comparable ``[since, until)``."""

    key: str
    first: date
    last: date
    since: datetime
    until: datetime

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


class PeriodError(Exception):
    """A period that cannot be read; ``message`` is English source text for the page."""

    def __init__(self, message: str, values: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.values = values or {}


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The start of ``day`` in ``zone`` (where DST skips midnight, the zone's reading of it)."""
    return datetime.combine(day, time(), tzinfo=zone)


def span(key: str, first: date, last: date, zone: ZoneInfo) -> Period:
    return Period(
        key=key,
        first=first,
        last=last,
        since=local_midnight(first, zone),
        until=local_midnight(last + timedelta(days=1), zone),
    )


def parse_day(text: str) -> date:
    """A date as an ``<input type=date>`` sends it: ``2026-11-24``."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise PeriodError(
            N_("%(value)s is not a date; write it as YYYY-MM-DD."), {"value": text}
        ) from None
    if not day_in_range(day):
        raise PeriodError(
            N_("%(value)s is not a date between %(first)s and %(last)s."),
            {"value": text, "first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()},
        )
    return day


def resolve(
    key: str | None, start: str | None, end: str | None, *, today: date, zone: ZoneInfo
) -> Period:
    """The period a dashboard query names; today when it names none.

    ``start``/``end`` count only for ``custom``; a custom range without an end
    runs to today.
    """
    key = key or TODAY
    if key == TODAY:
        return span(key, today, today, zone)
    if key == YESTERDAY:
        day = today - timedelta(days=1)
        return span(key, day, day, zone)
    if key == LAST_7_DAYS:
        return span(key, today - timedelta(days=6), today, zone)
    if key == LAST_30_DAYS:
        return span(key, today - timedelta(days=29), today, zone)
    if key == THIS_MONTH:
        return span(key, today.replace(day=1), today, zone)
    if key == CUSTOM:
        return _custom(start, end, today=today, zone=zone)
    raise PeriodError(N_("There is no period called %(value)s."), {"value": key})


def _custom(start: str | None, end: str | None, *, today: date, zone: ZoneInfo) -> Period:
    if not start or not start.strip():
        raise PeriodError(N_("Choose the first day of the period."))
    first = parse_day(start)
    last = parse_day(end) if end and end.strip() else today
    if first > last:
        raise PeriodError(
            N_("The period starts after it ends: %(start)s is later than %(end)s."),
            {"start": first.isoformat(), "end": last.isoformat()},
        )
    if (last - first).days + 1 > LONGEST_DAYS:
        raise PeriodError(N_("Choose a period of at most %(days)s days."), {"days": LONGEST_DAYS})
    return span(CUSTOM, first, last, zone)
