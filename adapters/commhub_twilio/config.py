"""One Twilio account's settings, as an admin writes them in the channels file.

The account's SID and Auth Token come from the Twilio Console. Messages go
out through the REST API (optionally authenticated with an API key instead
of the Auth Token); Twilio calls the hub back on ``public_url``, and every
callback is signed with the Auth Token, so the token is required either way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
)

from commhub.adapter_kit import callback_base, read_options
from commhub.channels import ChannelConfigError
from commhub.config import base_url
from commhub.domain import sms_senders

TWILIO_API_URL: Final = "https://api.twilio.com"
"""Where the SDK sends REST requests unless ``api_base_url`` says otherwise."""

_SID_HEX: Final = r"[0-9a-fA-F]{32}"


class TwilioSettings(BaseModel):
    """A Twilio account the hub sends from and receives on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_sid: str
    auth_token: SecretStr
    api_key_sid: str | None = None
    api_key_secret: SecretStr | None = None
    # Twilio takes alphanumeric sender ids of letters, digits and spaces only: no punctuation.
    numbers: Annotated[tuple[str, ...], BeforeValidator(sms_senders.sender_ids)] = Field(
        default=(), description="Our numbers (E.164), short codes or sender ids; first: default."
    )
    messaging_service_sid: str | None = None
    purposes: Annotated[frozenset[str], BeforeValidator(sms_senders.purposes)] = Field(
        default=frozenset(), description="What this account sends; empty: anything."
    )
    rate: float = Field(
        default=1.0,
        gt=0,
        le=10_000,
        description="Messages per second: a US long code takes 1, a short code 100.",
    )
    public_url: str | None = Field(
        default=None, description="The hub's base URL as Twilio reaches it; the hub's when unset."
    )
    api_base_url: str = TWILIO_API_URL
    timeout_s: float = Field(default=15.0, gt=0, le=120)
    settle_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=14,
        description="How long a callback waits for the hub to store it; Twilio gives up at 15 s.",
    )

    @field_validator("account_sid")
    @classmethod
    def _account_sid(cls, value: str) -> str:
        return _sid(value, "AC", "the Account SID on the Twilio Console's dashboard")

    @field_validator("api_key_sid")
    @classmethod
    def _api_key_sid(cls, value: str | None) -> str | None:
        return None if value is None else _sid(value, "SK", "an API key's SID")

    @field_validator("messaging_service_sid")
    @classmethod
    def _service_sid(cls, value: str | None) -> str | None:
        return None if value is None else _sid(value, "MG", "a Messaging Service's SID")

    @field_validator("auth_token", "api_key_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("public_url", "api_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else base_url(value)

    def credentials(self) -> tuple[str, str]:
        """The REST API's Basic auth: the API key where one is given, else the Auth Token."""
        if self.api_key_sid is not None and self.api_key_secret is not None:
            return self.api_key_sid, self.api_key_secret.get_secret_value()
        return self.account_sid, self.auth_token.get_secret_value()


def read_settings(
    name: str, options: Mapping[str, Any], *, hub_public_url: str | None
) -> TwilioSettings:
    """Validate ``options``; the error names the channel and the setting at fault.

    ``public_url`` falls back to the hub's (``hub_public_url``): one of them
    is required, since Twilio reports delivery only to a URL it can reach.
    """
    settings = read_options(TwilioSettings, options, f"Twilio channel {name!r}")
    problem = _missing(settings)
    if problem:
        raise ChannelConfigError(f"Twilio channel {name!r}: {problem}")
    public_url = callback_base(
        f"Twilio channel {name!r}",
        settings.public_url,
        hub_public_url,
        why="Twilio must be able to call the hub back with delivery reports",
    )
    settings = settings.model_copy(update={"public_url": public_url})
    return settings


def _missing(settings: TwilioSettings) -> str:
    if (settings.api_key_sid is None) != (settings.api_key_secret is None):
        return "api_key_sid and api_key_secret: give both or neither"
    if not settings.numbers and settings.messaging_service_sid is None:
        return "numbers: give our numbers, a messaging_service_sid, or both"
    return ""


def _sid(value: str, prefix: str, what: str) -> str:
    value = value.strip()
    if not re.fullmatch(prefix + _SID_HEX, value):
        raise ValueError(f"must be {what}: {prefix!r} and 32 hex digits")
    return value
