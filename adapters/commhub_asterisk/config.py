"""One PBX's settings, as an admin writes them in the channels file.

Direction and the customer's side of a call are read from *where* a channel
lives in the dialplan (its context) and from its name, both configured here,
never guessed from the length of a number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from commhub.adapter_kit import read_options

DEFAULT_EXTENSION_PATTERNS = (r"^(?:PJSIP|SIP|IAX2|DAHDI|Local)/(?P<ext>\d{2,6})(?:[-@;]|$)",)
"""``PJSIP/201-0000001a``, ``SIP/201-…``, ``IAX2/201-…`` and ``Local/201@operators-…``."""


class PbxSettings(BaseModel):
    """Connection, dialplan layout and dialling rules of one Asterisk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = Field(min_length=1)
    secret: SecretStr
    trunk_contexts: tuple[str, ...] = Field(
        default=("from-trunk", "from-pstn"),
        description="Contexts whose channels are the outside world (the provider's legs).",
    )
    trunk_channels: tuple[str, ...] = Field(
        default=(),
        description="Regexes on channel names that are trunk legs, e.g. '^PJSIP/provider-'.",
    )
    operator_contexts: tuple[str, ...] = Field(
        default=("from-internal",),
        description="Contexts whose channels are operators' phones.",
    )
    extension_patterns: tuple[str, ...] = Field(
        default=DEFAULT_EXTENSION_PATTERNS,
        description="Regexes with a group 'ext' reading an operator's extension from a channel.",
    )
    extensions: tuple[str, ...] = Field(
        default=(),
        description=(
            "Regexes matched against a whole extension: the operators' phones this PBX rings "
            "(click-to-call picks the PBX that serves the operator); empty: any extension."
        ),
    )
    region: str | None = Field(
        default=None,
        description="Region for numbers without a country code; the hub's when unset.",
    )
    dial_prefix: str = Field(default="", pattern=r"^[0-9*#+]*$")
    dial_format: Literal["local", "e164", "e164_digits"] = Field(
        default="local",
        description="How a number is dialled: as a local phone would, +E.164, or E.164 digits.",
    )
    originate_channel: str = Field(
        default="PJSIP/{extension}",
        description="The operator's phone to ring first on click-to-call.",
    )
    originate_context: str = Field(
        default="from-internal",
        validate_default=True,
        description=(
            "Where the customer's number is dialled once the operator answers: one of "
            "operator_contexts, so the call reads as the operator's own outbound call."
        ),
    )
    originate_timeout_s: int = Field(default=30, ge=5, le=300)
    cdr: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Wait briefly for Cdr events to confirm a call ('auto': once one was seen).",
    )
    cdr_wait_s: float = Field(default=3.0, ge=0, le=60)
    queue_size: int = Field(default=20_000, ge=100)
    reconnect_max_s: float = Field(default=30.0, ge=1)
    connect_timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r} (use an ISO code such as RU)")
        return region

    @field_validator("trunk_channels", "extension_patterns", "extensions")
    @classmethod
    def _regexes(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
        return patterns

    @field_validator("extension_patterns")
    @classmethod
    def _names_ext(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            if "ext" not in re.compile(pattern).groupindex:
                raise ValueError(f"pattern {pattern!r} has no (?P<ext>…) group")
        return patterns

    @field_validator("originate_context")
    @classmethod
    def _an_operator_context(cls, value: str, info: ValidationInfo) -> str:
        # Asterisk runs the customer's leg in this context as if the operator's phone had
        # dialled it; only in an operator context does the call read as that operator's
        # outbound call (a trunk context would make the customer's leg look inbound).
        contexts = info.data.get("operator_contexts")
        if contexts is not None and value not in contexts:
            raise ValueError(
                f"{value!r} is not one of operator_contexts ({', '.join(contexts) or 'none'}): "
                "click-to-call must dial the customer from an operator's context"
            )
        return value

    @field_validator("originate_channel")
    @classmethod
    def _has_extension(cls, value: str) -> str:
        if "{extension}" not in value:
            raise ValueError("must contain {extension}, e.g. PJSIP/{extension}")
        return value


def read_settings(name: str, options: Mapping[str, Any]) -> PbxSettings:
    """Validate ``options``; the error names the PBX and the setting at fault."""
    return read_options(PbxSettings, options, f"PBX {name!r}")
