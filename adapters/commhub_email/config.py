"""One mailbox's settings, as an admin writes them in the channels file.

A mailbox is one address the hub sends from (SMTP) and, when ``[imap]`` is
given, reads (IMAP): the folders it watches and what it does with a message
once it is on a card.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from commhub.adapter_kit import read_options
from commhub.channels import ChannelConfigError
from commhub.domain.emails import EmailError, normalize_email

Security = Literal["plain", "starttls", "tls"]
"""``plain``: no encryption (loopback relays only); ``starttls``: upgrade; ``tls``: implicit TLS."""


class SmtpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = "starttls"
    username: str = ""
    password: SecretStr = SecretStr("")
    timeout_s: float = Field(default=30.0, gt=0)
    verify_certificate: bool = True
    ca_file: str | None = Field(
        default=None, description="PEM file of the CA to trust instead of the system's."
    )
    idle_close_s: float = Field(
        default=120.0, gt=0, description="Close the reused connection after this long unused."
    )
    connections: int = Field(
        default=1,
        ge=1,
        le=20,
        description="Connections kept to the server, each with one message in flight: a "
        "campaign goes that many times faster, if the server allows as many.",
    )

    @property
    def effective_port(self) -> int:
        return self.port or {"plain": 25, "starttls": 587, "tls": 465}[self.security]


class ImapSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["plain", "tls"] = "tls"
    username: str = Field(min_length=1)
    password: SecretStr
    folders: tuple[str, ...] = ("INBOX",)
    timeout_s: float = Field(default=30.0, gt=0)
    verify_certificate: bool = True
    ca_file: str | None = Field(
        default=None, description="PEM file of the CA to trust instead of the system's."
    )
    idle_renew_s: float = Field(
        default=25 * 60.0,
        gt=0,
        le=29 * 60.0,
        description="Re-issue IDLE this often; servers may drop an IDLE after 30 minutes.",
    )
    poll_s: float = Field(default=60.0, gt=0, description="Poll interval without IDLE.")
    batch: int = Field(default=100, ge=1, le=1000, description="Messages fetched per request.")
    processed: str = Field(
        default="leave",
        description="After filing: 'leave', 'seen', 'flag:$Keyword' or 'move:Folder'.",
    )
    reconnect_max_s: float = Field(default=60.0, ge=1)

    @property
    def effective_port(self) -> int:
        return self.port or {"plain": 143, "tls": 993}[self.security]

    @field_validator("processed")
    @classmethod
    def _action(cls, value: str) -> str:
        kind, _, target = value.partition(":")
        if kind in ("leave", "seen") and not target:
            return value
        if kind in ("flag", "move") and target.strip() and not any(c in target for c in "\r\n"):
            return value
        raise ValueError("use 'leave', 'seen', 'flag:$Keyword' or 'move:Folder'")


class MailboxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str
    display_name: str = ""
    max_message_mb: float = Field(default=25.0, gt=0, le=500)
    smtp: SmtpSettings | None = None
    imap: ImapSettings | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            return normalize_email(value)
        except EmailError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("display_name")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\r" in value or "\n" in value:
            raise ValueError("must be one line")
        return value

    @property
    def max_message_bytes(self) -> int:
        return int(self.max_message_mb * 1024 * 1024)


def read_settings(name: str, options: Mapping[str, Any]) -> MailboxSettings:
    """Validate ``options``; the error names the mailbox and the setting at fault."""
    settings = read_options(MailboxSettings, options, f"mailbox {name!r}")
    if settings.smtp is None and settings.imap is None:
        raise ChannelConfigError(f"mailbox {name!r}: give [smtp], [imap] or both")
    return settings
