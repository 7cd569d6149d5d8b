"""The interaction log's filters as the browser sends them: read, checked, and put back in links.

The log page, its "Next page" link and the two exports take the same query
string, so a manager exports exactly the rows they are looking at. Dates are
the viewer's local days: ``to`` takes in the whole of that day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from multidict import MultiMapping

from commhub.domain.emails import EmailError, normalize_email
from commhub.domain.identifiers import parse_id
from commhub.domain.interactions import Direction, InteractionFilter, Medium, Status
from commhub.domain.moments import FIRST_DAY, LAST_DAY, day_in_range
from commhub.domain.pagination import Cursor, CursorError
from commhub.domain.phones import read_number
from commhub.web.ui.i18n import N_

FIELDS: Final = (
    "channel",
    "direction",
    "status",
    "operator_id",
    "queue",
    "from",
    "to",
    "contact_id",
    "address",
    "q",
)
MISSED: Final = Status.MISSED.value
UNANSWERED: Final = (Status.MISSED.value, Status.ABANDONED.value)
"""An inbound call nobody answered: missed at a phone, or abandoned waiting in a queue."""
MAX_TEXT: Final = 200
MAX_QUEUE: Final = 100

FilterValues = dict[str, str]


@dataclass(frozen=True, slots=True)
class FilterError(ValueError):
    """A filter value the log cannot use; ``message`` is English source text for the page."""

    message: str
    values: dict[str, str] = field(default_factory=dict)


def form_values(query: MultiMapping[str]) -> FilterValues:
    """The filters as typed, trimmed, to refill the form and carry into links."""
    return {name: query.get(name, "").strip() for name in FIELDS}


def link(path: str, values: Mapping[str, str], **extra: str) -> str:
    """``path`` with the non-empty filters (and ``extra``) as its query string."""
    pairs = [(k, v) for k, v in values.items() if v] + [(k, v) for k, v in extra.items() if v]
    return f"{path}?{urlencode(pairs)}" if pairs else path


def filters_from(values: FilterValues, zone: ZoneInfo, region: str) -> InteractionFilter:
    """The log's filter for ``values``, with dates taken as days in ``zone`` and numbers
    written without a country code read in ``region``."""
    since = _day_start(values["from"], zone)
    until = _day_start(values["to"], zone, days_after=1)
    if since is not None and until is not None and until <= since:
        raise FilterError(N_("The period ends before it starts: check the dates."))
    status = values["status"]
    return InteractionFilter(
        channel=_choice(values["channel"], Medium, N_("Unknown channel “%(value)s”.")),
        direction=_choice(values["direction"], Direction, N_("Unknown direction “%(value)s”.")),
        statuses=_statuses(status),
        operator_id=_identifier(values["operator_id"], N_("Unknown operator “%(value)s”.")),
        contact_id=_identifier(values["contact_id"], N_("Unknown contact “%(value)s”.")),
        queue=_bounded(values["queue"], MAX_QUEUE) or None,
        since=since,
        until=until,
        text=_bounded(values["q"], MAX_TEXT) or None,
        address=_address(_bounded(values["address"], MAX_TEXT), region),
    )


def cursor_from(text: str | None) -> Cursor | None:
    if not text:
        return None
    try:
        return Cursor.decode(text)
    except CursorError:
        raise FilterError(
            N_("This page link is broken or out of date: start again from the first page.")
        ) from None


def _statuses(value: str) -> tuple[str, ...] | None:
    if not value:
        return None
    if value == MISSED:
        return UNANSWERED
    _choice(value, Status, N_("Unknown status “%(value)s”."))
    return (value,)


def _choice(value: str, allowed: type[Medium | Direction | Status], message: str) -> str | None:
    if not value:
        return None
    if value not in {member.value for member in allowed}:
        raise FilterError(message, {"value": value[:40]})
    return value


def _identifier(value: str, message: str) -> int | None:
    if not value:
        return None
    found = parse_id(value)
    if found is None:
        raise FilterError(message, {"value": value[:40]})
    return found


def _bounded(value: str, limit: int) -> str:
    if len(value) > limit:
        raise FilterError(
            N_("A filter can be at most %(limit)s characters long."), {"limit": str(limit)}
        )
    return value


def _address(value: str, region: str) -> str | None:
    """A number in any format as E.164, or an e-mail address normalised: as stored."""
    if not value:
        return None
    if "@" in value:
        try:
            return normalize_email(value)
        except EmailError:
            raise FilterError(
                N_("“%(value)s” is not an e-mail address."), {"value": value[:40]}
            ) from None
    found = read_number(value, region)
    if found.e164 is None:
        raise FilterError(N_("“%(value)s” is not a phone number."), {"value": value[:40]})
    return found.e164


def _day_start(value: str, zone: ZoneInfo, *, days_after: int = 0) -> datetime | None:
    """Midnight of the local day ``value`` (``YYYY-MM-DD``) plus ``days_after`` days."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise FilterError(
            N_("“%(value)s” is not a date: use YYYY-MM-DD."), {"value": value[:40]}
        ) from None
    if not day_in_range(day):
        raise FilterError(
            N_("“%(value)s” is not a date between %(first)s and %(last)s."),
            {"value": value, "first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()},
        )
    return datetime.combine(day + timedelta(days=days_after), time(), tzinfo=zone)
