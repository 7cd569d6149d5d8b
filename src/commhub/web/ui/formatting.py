"""How the console writes times, durations, numbers and phone numbers for one user.

Everything is stored in UTC and as E.164; it is shown in the user's time zone
and language, and phone numbers the way a person of the hub's country writes
them (national format at home, international otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta
from datetime import datetime as Datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_decimal

from commhub.domain.phones import display_number


def zone_or_none(name: str | None) -> ZoneInfo | None:
    """The IANA zone ``name``, or ``None`` when it is empty or unknown here."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_names() -> list[str]:
    """Every IANA zone this machine knows, for the profile's time zone list."""
    return sorted(name for name in available_timezones() if "/" in name or name == "UTC")


@dataclass(frozen=True, slots=True)
class Formats:
    """One user's way of reading times and numbers; pages get it as ``fmt``."""

    language: str
    zone: ZoneInfo
    region: str

    def now(self) -> Datetime:
        return Datetime.now(self.zone)

    def local(self, moment: Datetime) -> Datetime:
        """``moment`` in the user's zone; in UTC when that zone would run off the calendar.

        A row stored before dates were bounded may lie at year 1 or 9999, which
        has no local time east or west of UTC (``OverflowError``): it is shown
        as stored rather than failing the page.
        """
        try:
            return moment.astimezone(self.zone)
        except OverflowError:
            return moment.astimezone(UTC)

    def datetime(self, moment: Datetime | None) -> str:
        """Date and time, short: ``24.11.2026, 14:05`` (ru) / ``11/24/26, 2:05 PM`` (en)."""
        if moment is None:
            return ""
        local = self.local(moment)
        return format_datetime(local, "short", tzinfo=local.tzinfo, locale=self.language)

    def when(self, moment: Datetime | None) -> str:
        """The time alone for today, else date and time: what a timeline shows."""
        if moment is None:
            return ""
        local = self.local(moment)
        if local.date() == self.now().date():
            return format_time(local, "short", tzinfo=local.tzinfo, locale=self.language)
        return self.datetime(moment)

    def date(self, moment: Datetime | None) -> str:
        if moment is None:
            return ""
        return format_date(self.local(moment).date(), "medium", locale=self.language)

    def iso(self, moment: Datetime | None) -> str:
        """Machine-readable, for ``<time datetime>`` and scripts."""
        return "" if moment is None else moment.isoformat()

    def duration(self, seconds: int | float | None) -> str:
        """Talk time as a clock reads it: ``4:07``, ``1:02:09``; empty when unknown."""
        if seconds is None:
            return ""
        whole = int(round(seconds))
        hours, rest = divmod(whole, 3600)
        minutes, secs = divmod(rest, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"

    def number(self, value: int | float) -> str:
        return format_decimal(value, locale=self.language)

    def phone(self, number: str | None) -> str:
        return "" if not number else display_number(number, self.region)

    def days_ago(self, days: int) -> Datetime:
        """Local midnight ``days`` days before today, as an aware datetime."""
        today = self.now().replace(hour=0, minute=0, second=0, microsecond=0)
        return today - timedelta(days=days)
