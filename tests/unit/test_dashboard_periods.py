"""The dashboard's periods: whole local days, whatever the zone and the calendar do."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from commhub.web.ui.periods import PeriodError, resolve

BERLIN = ZoneInfo("Europe/Berlin")
NOVOSIBIRSK = ZoneInfo("Asia/Novosibirsk")
TODAY = date(2026, 3, 31)


def test_today_is_local_midnight_to_midnight() -> None:
    period = resolve("today", None, None, today=TODAY, zone=NOVOSIBIRSK)

    assert period.since.astimezone(UTC) == datetime(2026, 3, 30, 17, tzinfo=UTC)
    assert period.until.astimezone(UTC) == datetime(2026, 3, 31, 17, tzinfo=UTC)


def test_no_period_means_today() -> None:
    assert resolve(None, None, None, today=TODAY, zone=BERLIN).first == TODAY


@pytest.mark.parametrize(
    ("key", "first", "days"),
    [
        ("yesterday", date(2026, 3, 30), 1),
        ("7d", date(2026, 3, 25), 7),
        ("30d", date(2026, 3, 2), 30),
        ("month", date(2026, 3, 1), 31),
    ],
)
def test_presets_end_today_except_yesterday(key: str, first: date, days: int) -> None:
    period = resolve(key, None, None, today=TODAY, zone=BERLIN)

    assert (period.first, period.days) == (first, days)


def test_a_day_with_a_dst_change_is_23_hours_long() -> None:
    # Berlin moved its clocks forward on 29 March 2026.
    period = resolve("custom", "2026-03-29", "2026-03-29", today=TODAY, zone=BERLIN)

    # (Subtracting in UTC: Python subtracts two times of one zone by their wall clocks.)
    length = period.until.astimezone(UTC) - period.since.astimezone(UTC)
    assert length.total_seconds() == 23 * 3600
    assert period.since.astimezone(UTC) == datetime(2026, 3, 28, 23, tzinfo=UTC)


def test_a_custom_range_includes_its_last_day() -> None:
    period = resolve("custom", "2026-03-01", "2026-03-10", today=TODAY, zone=BERLIN)

    assert period.until == datetime(2026, 3, 11, tzinfo=BERLIN)
    assert period.days == 10


def test_a_custom_range_without_an_end_runs_to_today() -> None:
    assert resolve("custom", "2026-03-20", "", today=TODAY, zone=BERLIN).last == TODAY


@pytest.mark.parametrize(
    ("start", "end", "says"),
    [
        ("10.03.2026", "", "is not a date"),
        ("2026-03-01", "tomorrow", "is not a date"),
        ("", "2026-03-01", "first day"),
        ("2026-03-11", "2026-03-10", "starts after it ends"),
        ("2024-01-01", "2026-03-10", "at most"),
    ],
)
def test_unreadable_custom_ranges_say_what_is_wrong(start: str, end: str, says: str) -> None:
    with pytest.raises(PeriodError) as raised:
        resolve("custom", start, end, today=TODAY, zone=BERLIN)

    assert says in raised.value.message


def test_an_unknown_period_is_refused() -> None:
    with pytest.raises(PeriodError) as raised:
        resolve("fortnight", None, None, today=TODAY, zone=BERLIN)

    assert raised.value.values == {"value": "fortnight"}
