"""Campaigns: their states, who is left out and why, and when each recipient's message may go.

A campaign's life is a small state machine; a person's action or the hub's
own (a scheduled start, an auto-pause, the last message settled) moves it
only along :data:`MOVES`. When a message may go is decided per recipient:
at the campaign's own pace, and never outside the hours the campaign allows
in *that person's* time zone (by default 09:00-21:00; never at night).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

from commhub.domain.catalog import N_
from commhub.domain.consent import refusal


class CampaignState(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    """Waits for ``start_at``."""
    STARTING = "starting"
    """Its recipient list is being frozen."""
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FINISHED = "finished"


class CampaignChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    BOTH = "both"
    """E-mail to those with a valid address, SMS to the others."""


class Schedule(StrEnum):
    NOW = "now"
    AT = "at"


MOVES: Final[dict[CampaignState, frozenset[CampaignState]]] = {
    CampaignState.DRAFT: frozenset(
        {CampaignState.SCHEDULED, CampaignState.STARTING, CampaignState.CANCELLED}
    ),
    CampaignState.SCHEDULED: frozenset(
        {CampaignState.DRAFT, CampaignState.STARTING, CampaignState.CANCELLED}
    ),
    CampaignState.STARTING: frozenset({CampaignState.RUNNING, CampaignState.CANCELLED}),
    CampaignState.RUNNING: frozenset(
        {CampaignState.PAUSED, CampaignState.CANCELLED, CampaignState.FINISHED}
    ),
    CampaignState.PAUSED: frozenset({CampaignState.RUNNING, CampaignState.CANCELLED}),
    CampaignState.CANCELLED: frozenset(),
    CampaignState.FINISHED: frozenset(),
}
EDITABLE: Final = frozenset({CampaignState.DRAFT, CampaignState.SCHEDULED})
"""States in which what is sent and to whom may still change."""


class CampaignError(ValueError):
    """A campaign cannot do what was asked; ``field`` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


def check_move(current: str, wanted: CampaignState) -> None:
    """Raise :class:`CampaignError` unless ``current`` may become ``wanted``."""
    if wanted in MOVES[CampaignState(current)]:
        return
    if current == CampaignState.STARTING and wanted is CampaignState.PAUSED:
        raise CampaignError(
            "state", "its list of recipients is still being made: pause it once it runs"
        )
    raise CampaignError("state", f"a {current} campaign cannot become {wanted.value}")


class Exclusion(StrEnum):
    """Why a person of the segment gets nothing: kept per recipient, shown in the results."""

    NO_ADDRESS = "no_address"
    NO_CONSENT = "no_consent"
    WITHDRAWN = "withdrawn"
    SUPPRESSED = "suppressed"
    SAME_ADDRESS = "same_address"
    MERGED = "merged"
    RENDER_FAILED = "render_failed"


EXCLUSION_TEXT: Final[dict[Exclusion, str]] = {
    Exclusion.NO_ADDRESS: N_("no address for this channel"),
    Exclusion.NO_CONSENT: N_("no consent recorded for this channel and purpose"),
    Exclusion.WITHDRAWN: N_("withdrew consent for this channel and purpose"),
    Exclusion.SUPPRESSED: N_("the address is on the suppression list"),
    Exclusion.SAME_ADDRESS: N_("another recipient has the same address"),
    Exclusion.MERGED: N_("merged into another contact"),
    Exclusion.RENDER_FAILED: N_("the message could not be written for this person"),
}


DEFAULT_WINDOW: Final = (9 * 60, 21 * 60)
EARLIEST_MINUTE: Final = 8 * 60
"""No window opens before 08:00 or closes after 22:00 in the recipient's zone: never at night."""
LATEST_MINUTE: Final = 22 * 60


@dataclass(frozen=True, slots=True)
class Window:
    """The local hours, in minutes after midnight, a recipient may get a message."""

    opens: int
    closes: int

    @classmethod
    def of(cls, opens: int | None, closes: int | None) -> Window:
        """The window asked for (the default if none); one reaching into the night is refused."""
        start, end = DEFAULT_WINDOW if opens is None and closes is None else (opens, closes)
        if start is None or end is None:
            raise CampaignError("window", "give both the opening and the closing time")
        if not EARLIEST_MINUTE <= start < end <= LATEST_MINUTE:
            raise CampaignError(
                "window",
                "must open at 08:00 or later, close by 22:00 and be open a while: "
                "messages never go at night",
            )
        return cls(start, end)

    def next_open(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """``moment`` if the window is open then in ``zone``, else when it next opens (UTC-aware).

        Local times are computed on the wall clock, so a daylight-saving change
        between now and the opening moves it by that hour, as a person expects.
        """
        local = moment.astimezone(zone)
        minute = local.hour * 60 + local.minute
        if self.opens <= minute < self.closes:
            return moment
        day = local.date() if minute < self.opens else local.date() + timedelta(days=1)
        opening = datetime(
            day.year, day.month, day.day, self.opens // 60, self.opens % 60, tzinfo=zone
        )
        return opening.astimezone(moment.tzinfo)


@dataclass(slots=True)
class Pace:
    """Hands out send times ``1 / rate`` apart from ``next_slot``; no rate: all at once."""

    next_slot: datetime
    rate: float | None

    def take(self, now: datetime) -> datetime:
        slot = max(self.next_slot, now)
        if self.rate:
            self.next_slot = slot + timedelta(seconds=1 / self.rate)
        else:
            self.next_slot = slot
        return slot


def recipient_zone(own: str | None, from_number: str | None, fallback: ZoneInfo) -> ZoneInfo:
    """The zone a person lives in: their own if set, else their number's, else the hub's."""
    for name in (own, from_number):
        if name:
            try:
                return ZoneInfo(name)
            except (ValueError, KeyError):
                continue
    return fallback


@dataclass(frozen=True, slots=True)
class Person:
    """What the store knows of one member when the list is frozen."""

    contact_id: int
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    consent: dict[str, bool]
    """Channel → the consent in force for the campaign's purpose (absent: none recorded)."""
    suppressed: frozenset[tuple[str, str]]
    """(channel, address) pairs on a suppression list."""


@dataclass(frozen=True, slots=True)
class Choice:
    """Where a member's message goes, or why it does not."""

    channel: str
    address: str
    exclusion: Exclusion | None


def choose(channel: CampaignChannel, purpose: str, person: Person) -> Choice:
    """The channel and address for ``person``; for ``both``, e-mail first, else SMS.

    The first address of a kind is the one used (the card lists it first).
    With ``both``, a person who cannot get the e-mail (no address, no consent,
    suppressed) gets the SMS if that may go; if neither may, the e-mail's
    reason is kept, or the SMS's when there was no e-mail address at all.
    """
    order = {
        CampaignChannel.EMAIL: ("email",),
        CampaignChannel.SMS: ("sms",),
        CampaignChannel.BOTH: ("email", "sms"),
    }[channel]
    first: Choice | None = None
    for kind in order:
        addresses = person.emails if kind == "email" else person.phones
        if not addresses:
            choice = Choice(kind, "", Exclusion.NO_ADDRESS)
        else:
            address = addresses[0]
            why = refusal(
                purpose, person.consent.get(kind), suppressed=(kind, address) in person.suppressed
            )
            choice = Choice(kind, address, None if why is None else Exclusion(why.value))
        if choice.exclusion is None:
            return choice
        if first is None or first.exclusion is Exclusion.NO_ADDRESS:
            first = choice
    assert first is not None
    return first
