"""One Kannel gateway's settings, as an admin writes them in the channels file.

The hub sends through smsbox's HTTP ``sendsms`` interface as one
``sendsms-user`` and hears Kannel back on two URLs under ``public_url``:
delivery reports (a ``dlr-url`` the hub passes with each message) and
messages from phones (the ``sms-service`` the admin adds to kannel.conf).
Both carry ``callback_secret``, which is how the hub knows a callback is
Kannel's: Kannel signs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
)

from commhub.adapter_kit import callback_base, read_options
from commhub.config import base_url
from commhub.domain import sms_senders

SECRET_MIN_LENGTH: Final = 32
_SECRET: Final = re.compile(r"[A-Za-z0-9_-]+")
"""URL-safe: the secret stands as it is in kannel.conf and in URLs, where a ``%`` would be
read as one of Kannel's escape codes."""
_SMSC_ID: Final = re.compile(r"[A-Za-z0-9._-]+")
DLR_BITS: Final = 1 | 2 | 4 | 8 | 16
"""Kannel's dlr-mask: 1 delivered, 2 undelivered, 4 buffered, 8 SMSC accepted, 16 SMSC rejected."""


class KannelSettings(BaseModel):
    """A Kannel smsbox the hub sends through and receives from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sendsms_url: str = Field(
        description="smsbox's sendsms, e.g. http://127.0.0.1:13013/cgi-bin/sendsms"
    )
    username: str = Field(min_length=1, description="The sendsms-user's username.")
    password: SecretStr = Field(description="The sendsms-user's password.")
    smsc: str | None = Field(
        default=None, description="The smsc-id to route through; Kannel's choice when unset."
    )
    # Alphanumeric ids without punctuation (sms_senders' default): which punctuation the SMSC
    # behind Kannel passes on is not known here.
    numbers: Annotated[tuple[str, ...], BeforeValidator(sms_senders.sender_ids)] = Field(
        default=(), description="Our numbers (E.164), short codes or sender ids; first: default."
    )
    purposes: Annotated[frozenset[str], BeforeValidator(sms_senders.purposes)] = Field(
        default=frozenset(), description="What this gateway sends; empty: anything."
    )
    rate: float = Field(
        default=20.0,
        gt=0,
        le=10_000,
        description="Messages per second the hub hands Kannel: the SMSC link's throughput.",
    )
    callback_secret: SecretStr = Field(
        description=f"At least {SECRET_MIN_LENGTH} random letters, digits, '-' or '_'."
    )
    public_url: str | None = Field(
        default=None, description="The hub's base URL as Kannel reaches it; the hub's when unset."
    )
    timeout_s: float = Field(default=15.0, gt=0, le=120)
    settle_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="How long a callback waits for the hub to store it before answering 503.",
    )
    dlr_mask: int = Field(
        default=31,
        ge=0,
        le=31,
        description="Which reports Kannel sends (1+2+4+8+16 = all); 0: none.",
    )

    @field_validator("sendsms_url")
    @classmethod
    def _sendsms_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{value!r} is not an http(s) URL such as http://127.0.0.1:13013/cgi-bin/sendsms"
            )
        if parts.query or parts.fragment:
            raise ValueError("give the URL without a query: the hub adds the parameters")
        return value.strip()

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if value != value.strip() or any(c in value for c in "\r\n"):
            raise ValueError("must be one line without surrounding spaces")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value

    @field_validator("smsc")
    @classmethod
    def _smsc(cls, value: str | None) -> str | None:
        if value is not None and not _SMSC_ID.fullmatch(value.strip()):
            raise ValueError("must be an smsc-id from kannel.conf: letters, digits, '.', '_', '-'")
        return None if value is None else value.strip()

    @field_validator("callback_secret")
    @classmethod
    def _callback_secret(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if len(secret) < SECRET_MIN_LENGTH or not _SECRET.fullmatch(secret):
            raise ValueError(
                f"must be at least {SECRET_MIN_LENGTH} letters, digits, '-' or '_' "
                "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if "change-me" in secret.lower():
            raise ValueError("replace the sample value with a random one")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if value is None else base_url(value)


def read_settings(
    name: str, options: Mapping[str, Any], *, hub_public_url: str | None
) -> KannelSettings:
    """Validate ``options``; the error names the channel and the setting at fault.

    ``public_url`` falls back to the hub's (``hub_public_url``): one of them
    is required, since Kannel reports delivery and hands over messages from
    phones only on a URL it can reach.
    """
    settings = read_options(KannelSettings, options, f"Kannel channel {name!r}")
    public_url = callback_base(
        f"Kannel channel {name!r}",
        settings.public_url,
        hub_public_url,
        why="Kannel must be able to call the hub back with reports and received messages",
    )
    settings = settings.model_copy(update={"public_url": public_url})
    return settings
