"""How the console writes times and numbers for a user: their zone, their language."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from commhub.web.ui.formatting import Formats, zone_or_none

MOMENT = datetime(2026, 11, 1, 21, 30, tzinfo=UTC)


def test_times_are_shown_in_the_users_zone_and_language() -> None:
    moscow_ru = Formats("ru", ZoneInfo("Europe/Moscow"), "RU")
    new_york_en = Formats("en", ZoneInfo("America/New_York"), "US")
    assert moscow_ru.datetime(MOMENT) == "02.11.2026, 00:30"  # already the next day in Moscow
    assert new_york_en.datetime(MOMENT) == "11/1/26, 4:30\u202fPM"  # EST since that night
    assert moscow_ru.date(MOMENT).startswith("2 нояб. 2026")


def test_durations_numbers_and_phones() -> None:
    ru = Formats("ru", ZoneInfo("UTC"), "RU")
    en = Formats("en", ZoneInfo("UTC"), "GB")
    assert ru.duration(59) == "0:59" and ru.duration(3729) == "1:02:09" and ru.duration(None) == ""
    assert ru.number(12345) == "12\xa0345" and en.number(12345) == "12,345"
    assert ru.phone("+79161234567") == "8 (916) 123-45-67"
    assert en.phone("+79161234567") == "+7 916 123-45-67"
    assert en.phone("+442071234567") == "020 7123 4567"
    assert ru.phone("201") == "201" and ru.phone("") == ""


def test_local_midnight_is_the_start_of_the_users_day() -> None:
    zone = ZoneInfo("Asia/Vladivostok")
    midnight = Formats("ru", zone, "RU").days_ago(0)
    assert midnight.tzinfo is zone and (midnight.hour, midnight.minute) == (0, 0)


def test_unknown_zones_are_none() -> None:
    assert zone_or_none("Mars/Olympus") is None and zone_or_none("") is None
    assert zone_or_none("../../etc/passwd") is None
    assert zone_or_none("Europe/Moscow") == ZoneInfo("Europe/Moscow")
