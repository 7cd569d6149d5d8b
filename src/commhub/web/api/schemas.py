"""Request and response bodies of the JSON API (pydantic models, also the OpenAPI schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from commhub.domain.interactions import Direction, Medium, Status, checked_recording_file
from commhub.domain.moments import RANGE_TEXT, checked_moment
from commhub.domain.roles import Role

Moment = Annotated[
    datetime,
    AfterValidator(checked_moment),
    Field(description=f"ISO 8601 with a time zone, {RANGE_TEXT}."),
]
"""A moment a client sends: with a time zone, inside the hub's span (domain/moments.py)."""


class Strict(BaseModel):
    """Bodies reject unknown fields, so a typo is an error and not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


def _reported_channel(value: Medium) -> Medium:
    """Deal lines come only from a stage change, so the timeline matches the deal's history."""
    if value is Medium.DEAL:
        raise ValueError("use call, sms, email or note; deal lines are written by moving a deal")
    return value


# --- auth, users, tokens -----------------------------------------------------


class LoginRequest(Strict):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1000)


class PasswordChange(Strict):
    current_password: str = Field(min_length=1, max_length=1000)
    new_password: str = Field(min_length=1, max_length=1000)


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    extension: str | None
    active: bool
    locale: str | None = Field(description="The console's language; null: the hub's or browser's.")
    time_zone: str | None = Field(description="IANA zone the console shows; null: the hub's.")


class SessionOut(BaseModel):
    user: UserOut
    csrf_token: str | None = Field(
        default=None, description="Send as X-CSRF-Token with cookie-authenticated writes."
    )


class UserCreate(Strict):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1000)
    role: Role
    display_name: str = Field(default="", max_length=200)
    extension: str | None = Field(default=None, max_length=32)


class UserUpdate(Strict):
    display_name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    extension: str | None = Field(
        default=None, max_length=32, description="Empty string clears it."
    )
    active: bool | None = None
    password: str | None = Field(default=None, max_length=1000)
    locale: str | None = Field(
        default=None, max_length=10, description="Console language (en, ru); empty clears it."
    )
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        description="IANA time zone (Europe/Moscow); empty string clears it.",
    )
    deals_to: int | None = Field(
        default=None,
        ge=1,
        description="With active=false: who gets the user's deals (default: the caller).",
    )


class UserList(BaseModel):
    items: list[UserOut]


class TokenCreate(Strict):
    name: str = Field(min_length=1, max_length=200)


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenIssued(TokenOut):
    token: str = Field(description="The secret; shown once, never again.")


class TokenList(BaseModel):
    items: list[TokenOut]


# --- contacts ------------------------------------------------------------------


class ConsentIn(Strict):
    channel: Literal["call", "sms", "email"]
    purpose: str = Field(min_length=1, max_length=50)
    granted: bool


class ConsentEventOut(BaseModel):
    channel: str
    purpose: str
    granted: bool
    source: str = Field(description="form, import, unsubscribe link, complaint, sms keyword…")
    evidence: str
    recorded_by_id: int | None
    recorded_at: datetime


class ConsentHistory(BaseModel):
    items: list[ConsentEventOut]


class ConsentOut(BaseModel):
    channel: str
    purpose: str
    granted: bool
    source: str
    recorded_at: datetime


class ContactCreate(Strict):
    name: str = Field(default="", max_length=300)
    company: str | None = Field(default=None, max_length=300)
    owner_id: int | None = None
    phones: list[str] = Field(default_factory=list, max_length=50)
    emails: list[str] = Field(default_factory=list, max_length=50)
    tags: list[str] = Field(default_factory=list, max_length=100)
    consents: list[ConsentIn] = Field(default_factory=list, max_length=50)
    extra: dict[str, str] = Field(default_factory=dict)
    region: str | None = Field(
        default=None, description="Region for phones without a country code (hub default)."
    )


class ContactUpdate(Strict):
    name: str | None = Field(default=None, max_length=300)
    company: str | None = Field(default=None, max_length=300)
    owner_id: int | None = Field(default=None, description="0 clears the owner.")
    phones: list[str] | None = Field(default=None, max_length=50)
    emails: list[str] | None = Field(default=None, max_length=50)
    tags: list[str] | None = Field(default=None, max_length=100)
    consents: list[ConsentIn] | None = Field(default=None, max_length=50)
    extra: dict[str, str] | None = None
    region: str | None = None


class PhoneOut(BaseModel):
    e164: str
    international: str


class ContactOut(BaseModel):
    id: int
    name: str
    company: str | None
    owner_id: int | None
    phones: list[PhoneOut]
    emails: list[str]
    tags: list[str]
    consents: list[ConsentOut]
    extra: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ContactList(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None


class ContactSearch(Strict):
    q: str | None = Field(default=None, max_length=300, description="Name (start of a word).")
    phone: str | None = Field(default=None, max_length=64, description="Any format.")
    email: str | None = Field(default=None, max_length=320)
    company: str | None = Field(default=None, max_length=300)
    tag: str | None = Field(default=None, max_length=100)
    region: str | None = None
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


class MergeRequest(Strict):
    source_ids: list[int] = Field(min_length=1, max_length=100)


# --- interactions --------------------------------------------------------------


class InteractionOut(BaseModel):
    id: int
    channel: str
    direction: str
    status: str
    external_id: str
    contact_id: int | None
    operator_id: int | None
    occurred_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_s: int | None
    from_address: str
    to_address: str
    subject: str
    summary: str
    recording_ref: str | None
    queue: str | None
    campaign_id: int | None = Field(
        default=None, description="The campaign it is a message of, or answers (a reply)."
    )
    extra: dict[str, Any]


class InteractionPage(BaseModel):
    items: list[InteractionOut]
    next_cursor: str | None


class CardOut(BaseModel):
    contact: ContactOut
    timeline: InteractionPage


class TimelineQuery(Strict):
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


class InteractionQuery(Strict):
    channel: Medium | None = None
    direction: Direction | None = None
    status: Status | None = None
    operator_id: int | None = None
    contact_id: int | None = None
    queue: str | None = Field(default=None, max_length=100)
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="case-insensitive substring of the subject or the summary",
    )
    since: Moment | None = None
    until: Moment | None = None
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


class InteractionCreate(Strict):
    channel: Annotated[
        Medium,
        AfterValidator(_reported_channel),
        Field(description="call, sms, email or note; deal lines are written by the deals service."),
    ]
    direction: Direction
    status: Status
    external_id: str = Field(min_length=1, max_length=255)
    occurred_at: Moment
    contact_id: int | None = None
    operator_id: int | None = Field(
        default=None,
        description="Who handled it; an operator may name only themselves (or nobody), "
        "managers and admins anyone.",
    )
    from_address: str = Field(default="", max_length=320)
    to_address: str = Field(default="", max_length=320)
    answered_at: Moment | None = None
    ended_at: Moment | None = None
    duration_s: int | None = Field(default=None, ge=0)
    subject: str = Field(default="", max_length=500)
    summary: str = Field(default="", max_length=20000)
    recording_ref: Annotated[str | None, AfterValidator(checked_recording_file)] = Field(
        default=None,
        max_length=500,
        description="The recording's file name on the PBX (call-1.wav, or 2026/12/call-1.wav); "
        "the console links it through COMMHUB_RECORDINGS_URL. URLs and absolute or "
        "parent paths are refused.",
    )
    queue: str | None = Field(default=None, max_length=100)
    extra: dict[str, Any] = Field(default_factory=dict)


# --- identify, imports, health ---------------------------------------------------


class IdentifyQuery(Strict):
    address: str = Field(min_length=1, max_length=320)
    region: str | None = None


class IdentifyOut(BaseModel):
    address: str
    verdict: Literal["match", "ambiguous", "unknown", "not_a_customer"]
    kind: Literal["phone", "email"]
    normalized: str | None
    reason: str
    contacts: list[ContactOut]


class ImportOut(BaseModel):
    id: int
    filename: str
    dry_run: bool
    status: str
    rows_done: int
    created: int
    merged: int
    rejected: int
    progress: float
    error: str | None
    errors_url: str | None
    created_at: datetime
    finished_at: datetime | None
    place: int | None = Field(
        default=None, description="While queued: 1 is next to run (after the running import)."
    )
    file_deleted: bool = Field(
        default=False, description="The uploaded and rejected-rows files were deleted (retention)."
    )


class ImportList(BaseModel):
    items: list[ImportOut]


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    jobs: str


# --- calls, live feed, channels ---------------------------------------------------


class CallCreate(Strict):
    contact_id: int | None = Field(default=None, description="Call this contact's first number.")
    number: str | None = Field(
        default=None, max_length=64, description="Or this number (any format)."
    )
    operator_id: int | None = Field(
        default=None, description="Whose phone rings first; managers may name another operator."
    )
    pbx: str | None = Field(
        default=None,
        description="Which PBX; by default the one that serves the operator's extension.",
    )
    region: str | None = None


class CallRequestOut(BaseModel):
    id: str
    status: str
    number: str
    extension: str
    pbx: str
    contact_id: int | None
    interaction_id: int | None
    error: str | None
    created_at: datetime


class MissedQuery(Strict):
    state: Literal["open", "called_back", "dismissed", "all"] = "open"
    operator_id: int | None = None
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


class MissedCallOut(BaseModel):
    id: int
    state: str
    number: str
    contact_id: int | None
    occurred_at: datetime
    resolved_at: datetime | None
    resolved_by_id: int | None
    resolved_by_interaction_id: int | None
    call: InteractionOut


class MissedPage(BaseModel):
    items: list[MissedCallOut]
    next_cursor: str | None


class ChannelHealthOut(BaseModel):
    name: str
    kind: str
    connected: bool
    last_event_at: datetime | None
    connected_since: datetime | None
    disconnected_since: datetime | None = None
    reconnects: int = Field(description="Times the link came back after a drop")
    failed_attempts: int = Field(default=0, description="Connection or login attempts that failed")
    error: str | None
    calls_in_progress: int | None = Field(
        default=None,
        description="A PBX's calls the log shows in progress: the same list as /calls/live",
    )
    detail: dict[str, Any]


class SmsSenderOut(BaseModel):
    gateway: str
    rate: float = Field(description="Messages per second it hands the gateway")
    sent: int
    failed: int
    retried: int
    last_error: str | None


class ChannelList(BaseModel):
    items: list[ChannelHealthOut]
    listening: bool = Field(description="Whether this process owns the channels' connections.")
    call_backlog: int = Field(description="Call updates waiting to be written.")
    calls_not_recorded: int = Field(
        description="Call updates lost since start (backlog full, or refused by the database); "
        "each one is in the log with its reason."
    )
    call_log_error: str | None = Field(description="The call log's last error, if unresolved.")
    mail_backlog: int = Field(default=0, description="Received messages waiting to be filed.")
    mail_filed: int = Field(default=0, description="Messages filed on cards since start.")
    mail_unreadable: int = Field(
        default=0, description="Messages kept raw since start because they could not be filed."
    )
    mail_error: str | None = Field(
        default=None, description="The mail filing's last error, if unresolved."
    )
    sms_received: int = Field(default=0, description="SMS filed on cards since start.")
    sms_reports: int = Field(default=0, description="Delivery reports that moved a status.")
    sms_unmatched_reports: int = Field(
        default=0, description="Delivery reports on message ids never sent from here."
    )
    sms_error: str | None = Field(default=None, description="SMS filing's last error.")
    sms_senders: list[SmsSenderOut] = Field(default_factory=list)
