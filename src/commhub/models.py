"""The tables, as SQLAlchemy 2 models. Same definitions on SQLite and PostgreSQL.

Migrations under ``store/migrations`` are the authority on the live schema;
these models must stay equal to them (a test compares the two).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit keys on PostgreSQL; SQLite only auto-increments ``INTEGER PRIMARY KEY``."""


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always returned timezone-aware.

    SQLite has no time zone type; storing naive UTC on both backends keeps
    ordering and comparisons identical everywhere.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class ExactAmount(TypeDecorator[Decimal]):
    """Money, exact on both backends: ``NUMERIC(20, 4)`` on PostgreSQL; on SQLite, which
    keeps a NUMERIC as a float (99999999999999.99 reads back …99.9844), a whole number of
    ten-thousandths in an INTEGER, so values and their SUMs stay exact."""

    impl = Numeric(20, 4)
    cache_ok = True
    SCALE = 4

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(20, self.SCALE))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return int(Decimal(value).scaleb(self.SCALE).to_integral_exact())

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.SCALE)
        return Decimal(value)


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class User(Base):
    """Someone who logs in: an operator, marketer, manager or admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    extension: Mapped[str | None] = mapped_column(String(32), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(String(10))
    """The console's language; ``None`` follows the browser."""
    time_zone: Mapped[str | None] = mapped_column(String(64))
    """IANA zone the console shows times in; ``None`` uses the hub's."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def shown_name(self) -> str:
        """What people see: the display name, else the username."""
        return self.display_name or self.username


class ApiToken(Base):
    """A revocable bearer token for an integration; only its hash is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class WebSession(Base):
    """A browser login; the cookie carries the token, the table only its hash."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class Company(Base):
    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    name_key: Mapped[str] = mapped_column(String(300), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Contact(Base):
    """A person on the contact base: the client card."""

    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contacts_name_key", "name_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    name_key: Mapped[str] = mapped_column(String(300), default="")
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("companies.id", ondelete="SET NULL"), index=True
    )
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    import_id: Mapped[int | None] = mapped_column(
        ForeignKey("imports.id", ondelete="SET NULL"), index=True
    )
    time_zone: Mapped[str | None] = mapped_column(String(64))
    """An IANA zone set for this person; else their number's region tells (``domain.moments``)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ContactPoint(Base):
    """A phone number or e-mail address of a contact, normalised for lookup.

    ``value`` is E.164 for phones and the normalised address for e-mail;
    ``match_key`` is the phone's trailing digits (see ``domain.phones``) and,
    for e-mail, equal to ``value``. Two contacts may share a point: a lookup
    then answers "ambiguous".
    """

    __tablename__ = "contact_points"
    __table_args__ = (
        UniqueConstraint("contact_id", "kind", "value", name="uq_contact_points_contact_value"),
        Index("ix_contact_points_kind_value", "kind", "value"),
        Index("ix_contact_points_kind_match_key", "kind", "match_key"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(320))
    match_key: Mapped[str] = mapped_column(String(320))
    label: Mapped[str] = mapped_column(String(50), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class ContactTag(Base):
    __tablename__ = "contact_tags"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Consent(Base):
    """The current consent of a contact for one channel and purpose, with its origin."""

    __tablename__ = "consents"
    __table_args__ = (
        UniqueConstraint("contact_id", "channel", "purpose", name="uq_consents_contact_purpose"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(50))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Interaction(Base):
    """One call, SMS or e-mail, in or out: a line on the client card.

    Unique on (channel, external_id) so that a replayed event finds its row
    instead of writing a second one.
    """

    __tablename__ = "interactions"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_interactions_channel_external_id"),
        Index("ix_interactions_card", "contact_id", "occurred_at", "id"),
        Index("ix_interactions_occurred_at", "occurred_at", "id"),
        Index("ix_interactions_operator", "operator_id", "occurred_at"),
        # A segment's interaction conditions: the contacts with such interactions since a
        # date, one range per channel, from the index alone.
        Index(
            "ix_interactions_segments",
            "channel",
            "occurred_at",
            "direction",
            "status",
            "contact_id",
        ),
        # A campaign's results (replies) and a segment's "received campaign X": campaign rows only.
        Index(
            "ix_interactions_campaign",
            "campaign_id",
            "direction",
            sqlite_where=text("campaign_id IS NOT NULL"),
            postgresql_where=text("campaign_id IS NOT NULL"),
        ),
        # Only calls in progress: the live view and the after-reconnect sweep read a
        # handful of rows, not the whole log.
        Index(
            "ix_interactions_open",
            "occurred_at",
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(255))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    occurred_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_s: Mapped[int | None] = mapped_column(Integer)
    from_address: Mapped[str] = mapped_column(String(320), default="")
    to_address: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(500), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    recording_ref: Mapped[str | None] = mapped_column(String(500))
    queue: Mapped[str | None] = mapped_column(String(100))
    campaign_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    call_list_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Import(Base):
    """One spreadsheet import: its mapping, progress and report."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(500))
    stored_path: Mapped[str] = mapped_column(String(1000))
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    merged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[float] = mapped_column(default=0.0)
    errors_path: Mapped[str | None] = mapped_column(String(1000))
    errors_bytes: Mapped[int] = mapped_column(Integer, default=0)
    """Length of the rejected-rows file at the last batch's commit: resume cuts it back to it."""
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    """Who runs the import while ``lease_until`` is ahead (one import writes at a time)."""
    lease_until: Mapped[datetime | None]
    files_deleted_at: Mapped[datetime | None]
    """When the uploaded file and the rejected-rows file were deleted (retention)."""


class MissedCall(Base):
    """A missed inbound call waiting for someone to call back or dismiss it.

    ``match_key`` is the caller's phone match key: an answered call with the
    same number later (in either direction) closes every open one.
    """

    __tablename__ = "missed_calls"
    __table_args__ = (
        Index("ix_missed_calls_state", "state", "occurred_at"),
        Index("ix_missed_calls_match_key", "match_key", "state"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), unique=True
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    number: Mapped[str] = mapped_column(String(64))
    match_key: Mapped[str | None] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20), default="open")
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_by_interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL")
    )


class CallRequest(Base):
    """A click-to-call an operator asked for; the call it became points back by ``id``."""

    __tablename__ = "call_requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    number: Mapped[str] = mapped_column(String(64))
    extension: Mapped[str] = mapped_column(String(32))
    channel_name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    error: Mapped[str | None] = mapped_column(Text)
    interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Email(Base):
    """The message behind an e-mail interaction: headers for threading, bodies, the original.

    ``raw`` is the message exactly as received or sent (attachments are read
    back out of it on download). ``thread_id`` is the id of the thread's first
    message here; a reply finds it through In-Reply-To/References.
    """

    __tablename__ = "emails"
    __table_args__ = (
        Index("ix_emails_message_id", "message_id"),
        Index("ix_emails_unmatched", "needs_assignment", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), unique=True
    )
    mailbox: Mapped[str] = mapped_column(String(100))
    message_id: Mapped[str] = mapped_column(String(500))
    in_reply_to: Mapped[str] = mapped_column(String(500), default="")
    references: Mapped[str] = mapped_column(Text, default="")
    thread_id: Mapped[int | None] = mapped_column(Id, index=True)
    kind: Mapped[str] = mapped_column(String(20), default="message")
    sender: Mapped[str] = mapped_column(String(500), default="")
    recipients: Mapped[dict[str, Any]] = mapped_column(default=dict)
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer, default=0)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    folder: Mapped[str | None] = mapped_column(String(300))
    uid: Mapped[int | None] = mapped_column(BigInteger)
    needs_assignment: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SmsMessage(Base):
    """The text behind an SMS interaction, with its shape (encoding, segments) and gateway."""

    __tablename__ = "sms_messages"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), unique=True
    )
    gateway: Mapped[str] = mapped_column(String(100))
    sender: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(8))
    segments: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    """Why it failed or was not delivered, in the gateway's or the network's words."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SmsPart(Base):
    """One id a gateway gave a sent message (one per segment on SMPP): reports name these."""

    __tablename__ = "sms_parts"
    __table_args__ = (UniqueConstraint("gateway", "gateway_id", name="uq_sms_parts_gateway_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sms_id: Mapped[int] = mapped_column(
        ForeignKey("sms_messages.id", ondelete="CASCADE"), index=True
    )
    gateway: Mapped[str] = mapped_column(String(100))
    gateway_id: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Outbox(Base):
    """One message to send: written before it is sent, updated with what the server said.

    It, not the job queue, says whether a message went: a job that runs twice
    finds the row already ``sent`` and does nothing.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", "channel", name="uq_outbox_campaign_contact"),
        Index("ix_outbox_state", "state", "next_attempt_at"),
        Index("ix_outbox_claim", "channel", "source", "state"),
        Index("ix_outbox_campaign", "campaign_id", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    channel: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(100))
    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), unique=True
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    campaign_id: Mapped[int | None] = mapped_column(Id)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sender: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    reply: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    """The sender (process and channel) holding the row while ``lease_until`` is ahead."""
    claimed_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    request_hash: Mapped[str | None] = mapped_column(String(64))
    """What the Idempotency-Key was first used for: the same key with another body is refused."""
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None]


class CallHeartbeat(Base):
    """When a PBX link last vouched that every call of that PBX still open in the log was up.

    Written every few seconds while the link follows its calls (one row per PBX,
    keyed by its external-id prefix), so a call whose end a crash hid ends no
    earlier than it must.
    """

    __tablename__ = "call_heartbeats"

    prefix: Mapped[str] = mapped_column(String(255), primary_key=True)
    at: Mapped[datetime]


class EmailCursorRow(Base):
    """How far a watched mailbox folder is imported (IMAP UIDVALIDITY and last UID)."""

    __tablename__ = "mail_cursors"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    folder: Mapped[str] = mapped_column(String(300), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MailFailure(Base):
    """A message that could not be filed, kept raw with the reason for an admin to look at."""

    __tablename__ = "mail_failures"
    __table_args__ = (
        UniqueConstraint(
            "source", "folder", "uidvalidity", "uid", name="uq_mail_failures_location"
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    folder: Mapped[str] = mapped_column(String(300))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    error: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]


class Suppression(Base):
    """An address no message may go to on a channel (a hard bounce, an opt-out), and why."""

    __tablename__ = "suppressions"
    __table_args__ = (
        UniqueConstraint("channel", "address", name="uq_suppressions_channel_address"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FollowUp(Base):
    """Something an operator owes a contact by a date (call back, send the offer)."""

    __tablename__ = "follow_ups"
    __table_args__ = (
        Index(
            "ix_follow_ups_open",
            "user_id",
            "due_at",
            sqlite_where=text("done_at IS NULL"),
            postgresql_where=text("done_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    due_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text, default="")
    interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL")
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Pipeline(Base):
    """A sales process: ordered stages a deal moves through, and the rules that feed it."""

    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    preset: Mapped[str | None] = mapped_column(String(50))
    """A shipped name shown in each viewer's language until an admin renames it."""
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_create: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Which inbound channels open a deal for a contact with none open: ``{"call": true}``."""
    won_when_paid: Mapped[bool] = mapped_column(Boolean, default=True)
    """Whether paying a deal's invoices in full moves it to the first won stage."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Stage(Base):
    """One stage of a pipeline: open, won or lost. A removed stage stays for its history."""

    __tablename__ = "stages"
    __table_args__ = (Index("ix_stages_pipeline", "pipeline_id", "position"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    preset: Mapped[str | None] = mapped_column(String(50))
    """A shipped name shown in each viewer's language until an admin renames it."""
    kind: Mapped[str] = mapped_column(String(10))
    position: Mapped[int] = mapped_column(Integer)
    removed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Deal(Base):
    """A sale in progress: who it is with, how much, who owns it and where it stands."""

    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_board", "stage_id", "updated_at", "id"),
        Index("ix_deals_owner", "owner_id", "closed_at"),
        Index("ix_deals_contact", "contact_id", "closed_at"),
        Index("ix_deals_company", "company_id"),
        Index("ix_deals_pipeline_closed", "pipeline_id", "closed_at"),
        Index("ix_deals_stage_money", "stage_id", "currency", "amount"),
        # The board's count and sums per currency of a column, from the index alone.
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(300))
    amount: Mapped[Decimal] = mapped_column(ExactAmount(), default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(20))
    expected_close_on: Mapped[date | None] = mapped_column(Date)
    next_step: Mapped[str] = mapped_column(String(500), default="")
    next_step_due_on: Mapped[date | None] = mapped_column(Date)
    lost_reason: Mapped[str] = mapped_column(String(500), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    origin_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    """What created it (an Idempotency-Key, the call or e-mail a rule answered): once only."""
    stage_entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    """When it last entered a won or lost stage; ``None`` while open."""
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StageChange(Base):
    """One move of a deal between stages (``from_stage_id`` is ``None`` when it was made).

    Kept forever: the funnel and the velocity are computed from these, never
    from where deals stand now.
    """

    __tablename__ = "stage_changes"
    __table_args__ = (Index("ix_stage_changes_deal", "deal_id", "changed_at", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    from_stage_id: Mapped[int | None] = mapped_column(ForeignKey("stages.id"))
    to_stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    changed_at: Mapped[datetime]
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class StageReach(Base):
    """That a deal reached a stage, when, and what became of it after: the funnel's rows.

    Derived from :class:`StageChange` by ``domain.funnel.reaches`` and rewritten
    for a deal whenever its history or its pipeline's order changes, so the
    funnel report is one indexed aggregate instead of a walk through history.
    Owner, source, amount and outcome are copied from the deal for the filters.
    """

    __tablename__ = "stage_reaches"
    __table_args__ = (
        UniqueConstraint("deal_id", "stage_id", name="uq_stage_reaches_deal_stage"),
        # Covering: the report's aggregates read a year of a pipeline from the index alone
        # (index-only scans on both backends; figures in bench/funnel).
        Index(
            "ix_stage_reaches_funnel",
            "pipeline_id",
            "reached_at",
            "stage_id",
            "currency",
            "amount",
            "moved_on_at",
            "won_at",
            "skipped",
            "seconds_in",
            "owner_id",
            "source",
            "deal_id",
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    reached_at: Mapped[datetime]
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    """Reached by passing over it (the deal went further at once): no time spent in it."""
    moved_on_at: Mapped[datetime | None]
    """When the deal first reached a stage further along (the next one, by the skip rule)."""
    won_at: Mapped[datetime | None]
    """When the deal first reached a won stage."""
    seconds_in: Mapped[int] = mapped_column(Integer, default=0)
    """Time spent in the stage over every stay that has ended."""
    owner_id: Mapped[int | None] = mapped_column(Id)
    source: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(ExactAmount())
    currency: Mapped[str] = mapped_column(String(3))
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    """Only on a lost stage's row (``""`` when no reason was given): why the deal was lost.
    The row itself says it counts as a loss, whatever the stage's kind is later."""


class FunnelDay(Base):
    """The funnel rows of one UTC day summed per pipeline, stage and currency.

    Kept in step with :class:`StageReach` by ``store.funnel.rewrite`` (it adds what a
    deal's new rows bring and takes away what its old ones brought, in the same
    transaction), so a year's report sums a few thousand rows, not a million; the
    partial days at a period's edges (the viewer's midnight is not UTC's) are read
    from the funnel rows themselves.
    """

    __tablename__ = "funnel_days"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "day", "stage_id", "currency", name="uq_funnel_days_key"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    currency: Mapped[str] = mapped_column(String(3))
    reached: Mapped[int] = mapped_column(Integer, default=0)
    moved_on: Mapped[int] = mapped_column(Integer, default=0)
    won: Mapped[int] = mapped_column(Integer, default=0)
    amount: Mapped[Decimal] = mapped_column(ExactAmount(), default=Decimal(0))


class FunnelStay(Base):
    """How many deals that reached a stage on a UTC day spent so many whole days in it
    before moving on: the median's histogram, kept like :class:`FunnelDay`."""

    __tablename__ = "funnel_stays"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "day", "stage_id", "days", name="uq_funnel_stays_key"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    days: Mapped[int] = mapped_column(Integer)
    deals: Mapped[int] = mapped_column(Integer, default=0)


class FunnelLoss(Base):
    """How many deals reached a lost stage on a UTC day, per reason, kept like
    :class:`FunnelDay`."""

    __tablename__ = "funnel_losses"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "day", "stage_id", "reason", name="uq_funnel_losses_key"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    reason: Mapped[str] = mapped_column(String(500))
    deals: Mapped[int] = mapped_column(Integer, default=0)


class Invoice(Base):
    """A bill for a deal: what is owed, by when, and how much of it is paid."""

    __tablename__ = "invoices"
    __table_args__ = (Index("ix_invoices_open", "paid_in_full", "due_on"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(100), unique=True)
    amount: Mapped[Decimal] = mapped_column(ExactAmount())
    currency: Mapped[str] = mapped_column(String(3))
    issued_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    paid_amount: Mapped[Decimal] = mapped_column(ExactAmount(), default=Decimal(0))
    paid_on: Mapped[date | None] = mapped_column(Date)
    """The date of the payment that settled it (the last one), once paid in full."""
    paid_in_full: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Payment(Base):
    """Money received against an invoice; an invoice may be paid in parts."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[Decimal] = mapped_column(ExactAmount())
    paid_on: Mapped[date] = mapped_column(Date)
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    """The Idempotency-Key it was recorded with: a resent form records it once."""
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentEvent(Base):
    """One change of a contact's consent, with its evidence: the ledger behind :class:`Consent`.

    ``Consent`` holds the answer in force; these rows say who gave or withdrew
    it, when, through what (a form, an import column, a call outcome, an SMS
    keyword, an unsubscribe link) and what proves it. Never rewritten.
    """

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_contact", "contact_id", "recorded_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(50))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(200))
    evidence: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Segment(Base):
    """A saved choice of contacts: a rule tree evaluated when used, or a static list."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    """``dynamic`` (``rules`` decide) or ``static`` (the members listed)."""
    rules: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text, default="")
    import_id: Mapped[int | None] = mapped_column(
        ForeignKey("imports.id", ondelete="SET NULL"), index=True
    )
    """The import a static list was made from, if any."""
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    removed_at: Mapped[datetime | None]


class SegmentMember(Base):
    """A contact on a static list."""

    __tablename__ = "segment_members"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageTemplate(Base):
    """A message a marketer wrote (Jinja2, rendered in a sandbox), for e-mail or SMS."""

    __tablename__ = "message_templates"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(10), default="")
    subject: Mapped[str] = mapped_column(String(500), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)
    stock_key: Mapped[str | None] = mapped_column(String(100))
    """The shipped template it was copied from, if any."""
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    removed_at: Mapped[datetime | None]


class Campaign(Base):
    """One mailing to a segment: what, to whom, through which sender, when and how fast.

    ``content`` is the templates as they were when it started: editing a
    template afterwards changes nothing already under way.
    """

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_state", "state", "start_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(50), default="marketing")
    channel: Mapped[str] = mapped_column(String(10))
    """``email``, ``sms`` or ``both`` (e-mail where the address is valid, else SMS)."""
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="SET NULL"))
    email_template_id: Mapped[int | None] = mapped_column(
        ForeignKey("message_templates.id", ondelete="SET NULL")
    )
    sms_template_id: Mapped[int | None] = mapped_column(
        ForeignKey("message_templates.id", ondelete="SET NULL")
    )
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    mailbox: Mapped[str | None] = mapped_column(String(100))
    sms_gateway: Mapped[str | None] = mapped_column(String(100))
    sms_sender: Mapped[str | None] = mapped_column(String(50))
    schedule: Mapped[str] = mapped_column(String(10), default="now")
    """``now``, ``at`` (``start_at``) or ``local`` (within the window in each recipient's zone)."""
    start_at: Mapped[datetime | None]
    window_from: Mapped[int | None] = mapped_column(Integer)
    """Minutes after local midnight; with ``window_to`` the hours a recipient may get it."""
    window_to: Mapped[int | None] = mapped_column(Integer)
    rate: Mapped[float | None]
    """Messages per second for this campaign; the gateway's own limit still holds."""
    bounce_limit: Mapped[float] = mapped_column(default=5.0)
    """Hard bounces, in percent of sent, above which it pauses itself."""
    complaint_limit: Mapped[float] = mapped_column(default=0.1)
    state: Mapped[str] = mapped_column(String(20), default="draft")
    state_reason: Mapped[str] = mapped_column(Text, default="")
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    """How many the segment held at the start (before exclusions)."""
    excluded: Mapped[int] = mapped_column(Integer, default=0)
    next_slot_at: Mapped[datetime | None]
    """When the next message filled may go, at ``rate``: the campaign's own pace."""
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class CampaignRecipient(Base):
    """One person of a campaign's frozen list: the address chosen, or why they were left out.

    Frozen at the start. A row moves from ``pending`` to ``queued`` in the
    transaction that writes its outbox row, so a worker killed mid-batch
    leaves either both or neither.
    """

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        Index("ix_campaign_recipients_fill", "campaign_id", "state", "seq"),
        Index("ix_campaign_recipients_contact", "contact_id"),
    )

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(20), default="")
    address: Mapped[str] = mapped_column(String(320), default="")
    state: Mapped[str] = mapped_column(String(20), default="pending")
    """``pending``, ``queued`` (its outbox row exists), ``excluded`` or ``failed`` (to render)."""
    reason: Mapped[str] = mapped_column(Text, default="")
    token: Mapped[str] = mapped_column(String(40), unique=True)
    """The secret in its unsubscribe link: one click, no login."""
    outbox_id: Mapped[int | None] = mapped_column(Id)
