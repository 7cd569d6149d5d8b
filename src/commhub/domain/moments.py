"""The span of time the hub accepts: every date a client sends is inside it.

Python's ``datetime`` runs from year 1 to 9999, so a moment near either end
overflows as soon as it is shown in a zone east or west of UTC (0001-01-01
in Pacific/Kiritimati, 9999-12-31 in America/Adak). No call, message or
report of a sales team lies outside these bounds, so they are refused at the
door rather than handled everywhere a moment is shown.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Final

EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""The first moment the hub accepts (inclusive)."""
LATEST: Final = datetime(2100, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
"""The last moment the hub accepts (inclusive)."""
FIRST_DAY: Final = EARLIEST.date()
LAST_DAY: Final = LATEST.date()
RANGE_TEXT: Final = "between 1970-01-01T00:00:00Z and 2100-12-31T23:59:59Z"
"""The bounds as a message names them."""


class MomentError(ValueError):
    """A moment without a time zone, or outside the hub's span."""


def checked_moment(moment: datetime) -> datetime:
    """``moment`` if it has a time zone and lies between :data:`EARLIEST` and :data:`LATEST`.

    The year is looked at first: comparing a moment next to year 1 or 9999
    with another offset than UTC would itself overflow.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise MomentError("give a time zone, e.g. 2026-11-01T10:00:00Z")
    if not EARLIEST.year - 1 <= moment.year <= LATEST.year + 1 or not (
        EARLIEST <= moment <= LATEST
    ):
        raise MomentError(f"must be {RANGE_TEXT}")
    return moment


def day_in_range(day: date) -> bool:
    """Whether a calendar day lies inside the hub's span (a day filter, a report's period)."""
    return FIRST_DAY <= day <= LAST_DAY
