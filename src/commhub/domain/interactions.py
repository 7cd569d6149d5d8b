"""Interactions: the vocabulary of the client card's timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Medium(StrEnum):
    """How an interaction happened: its ``channel`` in the API and the log (in code
    ``Medium``, since a :class:`~commhub.channels.Channel` is a configured connection)."""

    CALL = "call"
    SMS = "sms"
    EMAIL = "email"
    NOTE = "note"
    DEAL = "deal"
    """A deal was opened or moved between stages: written by the deals service only."""


class Direction(StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"
    INTERNAL = "internal"


class Status(StrEnum):
    """Where an interaction ended up; channels use the subset that applies to them."""

    RINGING = "ringing"
    ANSWERED = "answered"
    MISSED = "missed"
    NO_ANSWER = "no_answer"
    """An outbound call the customer did not pick up."""
    BUSY = "busy"
    FAILED = "failed"
    ABANDONED = "abandoned"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    RECEIVED = "received"
    BOUNCED = "bounced"
    LOGGED = "logged"
    UNCERTAIN = "uncertain"
    """An outbound message whose hand-over a crash cut off: it may have been sent."""
    WITHHELD = "withheld"
    """A campaign message not sent: the person withdrew consent or opted out before its turn."""
    CANCELLED = "cancelled"
    """A campaign message not sent: the campaign was cancelled before its turn."""


class DeliveryState(StrEnum):
    """Where a sent SMS is, as its gateway reports: the SMS subset of :class:`Status`, with
    an order; ``rank`` only ever rises."""

    QUEUED = Status.QUEUED.value
    SENT = Status.SENT.value
    DELIVERED = Status.DELIVERED.value
    UNDELIVERED = Status.UNDELIVERED.value
    FAILED = Status.FAILED.value

    @property
    def rank(self) -> int:
        """queued < sent < a final state; a report never moves a message backwards."""
        return {Status.QUEUED.value: 0, Status.SENT.value: 1}.get(self.value, 2)


def checked_recording_file(reference: str | None) -> str | None:
    """``reference`` if it names a recording file, relative to where the PBX keeps them.

    The console turns a reference into a link only through the configured
    recordings URL (``{file}``/``{path}``), so a client may not store a URL of
    its own (``https://…``, ``//host/…``), an absolute path or one climbing out
    with ``..``: a call record would otherwise send the people who open it
    anywhere the client chose.
    """
    if reference is None:
        return None
    if not reference.strip():
        raise ValueError("name the recording's file, or leave it out")
    if ":" in reference or "\\" in reference or reference.startswith("/"):
        raise ValueError("give the recording's file name, not a URL or an absolute path")
    if any(ord(char) < 32 or ord(char) == 127 for char in reference):
        raise ValueError("a file name has no control characters")
    parts = reference.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError("give the recording's file name, without empty, . or .. folders")
    return reference


def is_recording_file(reference: str) -> bool:
    """Whether ``reference`` passes :func:`checked_recording_file`."""
    try:
        checked_recording_file(reference)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class NewInteraction:
    """What a channel or a person reports happened, before it is matched to a contact.

    ``external_id`` is the id the outside system gives the event (Asterisk's
    Linkedid, a Message-ID, a gateway's message id): recording the same one
    twice on the same channel yields the first row.
    """

    channel: Medium
    direction: Direction
    status: Status
    external_id: str
    occurred_at: datetime
    from_address: str = ""
    to_address: str = ""
    contact_id: int | None = None
    operator_id: int | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: int | None = None
    subject: str = ""
    summary: str = ""
    recording_ref: str | None = None
    queue: str | None = None
    campaign_id: int | None = None
    """The campaign it answers (a reply), or is a message of."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def counterpart_address(self) -> str:
        """The customer's side: who called or wrote us, or whom we called or wrote."""
        return self.from_address if self.direction is Direction.INBOUND else self.to_address


@dataclass(frozen=True, slots=True)
class InteractionFilter:
    """The interaction log's filters; ``None`` means "any".

    ``statuses`` matches any of several (a missed call is ``missed`` or
    ``abandoned`` in a queue); ``text`` is a case-insensitive substring of the
    subject or the summary; ``address`` is the other side's number (E.164) or
    e-mail address exactly as the channels store it, on a card or not.
    """

    channel: str | None = None
    direction: str | None = None
    status: str | None = None
    statuses: tuple[str, ...] | None = None
    operator_id: int | None = None
    contact_id: int | None = None
    queue: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    address: str | None = None
