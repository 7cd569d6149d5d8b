"""Settings: one plain object read from the environment (``COMMHUB_*``) or a .env file.

Nothing reads the environment anywhere else; the composition root hands the
values it needs to each part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from commhub.domain.opt_outs import START_WORDS, STOP_WORDS

DEFAULT_DATA_DIR = Path("var")
CONSOLE_LANGUAGES = ("en", "ru")
DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
"""The async drivers the store runs on (ARCHITECTURE.md: SQLite and PostgreSQL)."""
REDIS_SCHEMES = ("redis", "rediss")


def base_url(text: str) -> str:
    """A URL the hub is reached on, without the trailing slash paths are joined on.

    One rule for the hub's ``public_url`` and every gateway's own: an http(s)
    URL with a host, and no query or fragment, which a path appended to it
    would leave stranded in the middle.
    """
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http(s) URL such as https://hub.example.com")
    if parts.query or parts.fragment:
        raise ValueError("a base URL has no query or fragment")
    return text.strip().rstrip("/")


class Settings(BaseSettings):
    """Everything an admin can configure; the defaults are the embedded setup."""

    model_config = SettingsConfigDict(
        env_prefix="COMMHUB_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR, description="Where the SQLite file and import reports live."
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL; empty means a SQLite file in data_dir.",
    )
    redis_url: str = Field(
        default="",
        description="arq/Redis URL for background jobs; empty runs jobs in-process.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    phone_region: str = Field(
        default="US",
        description="ISO region used to read numbers written without a country code.",
    )
    migrate_on_start: bool = True
    session_ttl_hours: int = Field(default=12, ge=1)
    cookie_secure: bool = Field(
        default=False, description="Set the Secure flag on the session cookie (behind TLS)."
    )
    max_upload_mb: int = Field(default=200, ge=1)
    import_retention_days: int = Field(
        default=30,
        ge=1,
        description="Days an import's uploaded file and rejected-rows file are kept after it ends.",
    )
    login_max_failures: int = Field(
        default=10,
        ge=1,
        description="Wrong passwords one client may try for one username in 15 minutes.",
    )
    channels_file: Path | None = Field(
        default=None,
        description="TOML file with one [[channels]] table per PBX, mailbox or gateway.",
    )
    listen: bool = Field(
        default=True,
        description="This process owns the channels' connections (false on extra web processes).",
    )
    create_unknown_callers: bool = Field(
        default=False, description="Create a contact for a caller whose number is unknown."
    )
    public_url: str = Field(
        default="",
        description="The hub's URL as gateways reach it (https://hub.example.com): their "
        "callbacks are addressed and their signatures checked on it; empty: as requested.",
    )
    sms_stop_words: list[str] = Field(
        default_factory=lambda: list(STOP_WORDS),
        description="An SMS consisting of one of these words opts its sender out of SMS.",
    )
    sms_start_words: list[str] = Field(
        default_factory=lambda: list(START_WORDS),
        description="An SMS consisting of one of these words opts its sender back in.",
    )
    campaign_reply_window_days: int = Field(
        default=7,
        ge=0,
        le=365,
        description="An SMS from a number that got a campaign's SMS within this many days "
        "is that campaign's reply (the latest such campaign); 0: SMS replies are not threaded.",
    )
    create_unknown_senders: bool = Field(
        default=False, description="Create a contact for an e-mail sender on no card."
    )
    recordings_url: str = Field(
        default="",
        description="Where people's browsers fetch call recordings: a URL with {file} "
        "(the recording's file name) or {path} (its path on the PBX), e.g. "
        "https://pbx.example.com/monitor/{file}; empty: the card shows the file name.",
    )
    time_zone: str = Field(
        default="UTC",
        description="IANA time zone the console shows times in for users who chose none "
        "(Europe/Moscow); reports count days in it.",
    )
    language: str = Field(
        default="",
        description="The console's language for users who chose none (en, ru); empty: "
        "the browser's.",
    )
    outbox_lease_s: float = Field(
        default=30.0,
        ge=2.0,
        le=3600.0,
        description="How long a sender's claim on an outbox message holds without renewal "
        "(renewed every third of it); a message whose sender died mid-hand-over is shown as "
        "uncertain about this long after.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_personal_data: bool = Field(
        default=False,
        description="Debugging only: log phone numbers, e-mail addresses and SQL parameters "
        "as they are; off, every log line has them masked (+7916***67, i***@example.com).",
    )
    admin_password: SecretStr | None = Field(
        default=None, description="Password for the first admin; random and printed if unset."
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        if not value.strip():
            return ""
        try:
            driver = make_url(value.strip()).drivername
        except (ArgumentError, ValueError):
            raise ValueError(
                "not a database URL such as postgresql+asyncpg://user:pw@db/commhub"
            ) from None
        if driver not in DATABASE_DRIVERS:
            raise ValueError(
                f"the hub runs on {' or '.join(DATABASE_DRIVERS)}, not {driver!r} "
                "(e.g. postgresql+asyncpg://user:pw@db/commhub)"
            )
        return value.strip()

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.strip():
            return ""
        try:
            parts = urlsplit(value.strip())
            port = parts.port
        except ValueError:
            port, parts = -1, urlsplit("")
        database = parts.path.strip("/")
        if (
            parts.scheme not in REDIS_SCHEMES
            or not parts.hostname
            or port == -1
            or not (database == "" or (database.isascii() and database.isdigit()))
        ):
            raise ValueError("not a Redis URL such as redis://127.0.0.1:6379/0")
        return value.strip()

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        return base_url(value) if value.strip() else ""

    @field_validator("recordings_url")
    @classmethod
    def _recordings_url(cls, value: str) -> str:
        if not value.strip():
            return ""
        if "{file}" not in value and "{path}" not in value:
            raise ValueError("put {file} or {path} where the recording goes")
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.strip()

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Moscow)"
            ) from None
        return value

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value and value not in CONSOLE_LANGUAGES:
            raise ValueError(f"the console speaks {', '.join(CONSOLE_LANGUAGES)}, not {value!r}")
        return value

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r} (use an ISO code such as RU, GB)")
        return region

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'commhub.db'}"

    @property
    def imports_dir(self) -> Path:
        """Uploaded import files and their rejected-rows reports."""
        return self.data_dir / "imports"
