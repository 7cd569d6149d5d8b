"""One SMPP account's settings, as an admin writes them in the channels file.

The SMSC operator hands out the host, port, system_id and password (and
sometimes a system_type, an address_range or a service_type), says which
TON/NPI it wants for numbers, short codes and alphanumeric senders, and how
many messages per second and in flight the account may use.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from commhub.adapter_kit import read_options
from commhub.domain import sms_senders
from commhub.domain.sms_senders import SenderKind
from commhub_smpp.receipts import ReceiptIds

_ID_PUNCTUATION: Final = ".&_-"
"""What a sender id may hold here besides letters, digits and spaces. Twilio takes none of it,
but an SMSC carries an alphanumeric source_addr (TON 5) as GSM 7-bit text (TS 23.040
§9.1.2.5), so ids an operator registered with these (``M&S``, ``shop.ru``) go through."""


class SmppSettings(BaseModel):
    """An ESME account on one SMSC, bound as a transceiver."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=2775, ge=1, le=65535)
    system_id: str = Field(min_length=1, max_length=15)
    password: SecretStr = SecretStr("")
    system_type: str = Field(default="", max_length=12)
    address_range: str = Field(default="", max_length=40)
    service_type: str = Field(default="", max_length=5)
    numbers: Annotated[
        tuple[str, ...],
        BeforeValidator(partial(sms_senders.sender_ids, punctuation=_ID_PUNCTUATION)),
    ] = Field(
        default=(), description="Our numbers (E.164), short codes or sender ids; first: default."
    )
    purposes: Annotated[frozenset[str], BeforeValidator(sms_senders.purposes)] = Field(
        default=frozenset()
    )
    rate: float = Field(default=10.0, gt=0, le=10_000)
    window: int = Field(default=10, ge=1, le=1000)
    source_ton: int = Field(default=1, ge=0, le=6)
    source_npi: int = Field(default=1, ge=0, le=18)
    short_code_ton: int = Field(default=3, ge=0, le=6)
    short_code_npi: int = Field(default=0, ge=0, le=18)
    alphanumeric_ton: int = Field(default=5, ge=0, le=6)
    alphanumeric_npi: int = Field(default=0, ge=0, le=18)
    dest_ton: int = Field(default=1, ge=0, le=6)
    dest_npi: int = Field(default=1, ge=0, le=18)
    registered_delivery: bool = True
    receipt_ids: ReceiptIds = "as_submitted"
    retry_statuses: tuple[int, ...] = Field(
        default=(), description="Vendor command statuses to treat as temporary (e.g. 0x401)."
    )
    enquire_link_s: float = Field(default=30.0, gt=0, le=3600)
    response_timeout_s: float = Field(default=10.0, gt=0, le=300)
    settle_timeout_s: float = Field(
        default=20.0,
        gt=0,
        le=300,
        description="How long a deliver_sm waits for the hub to store it before a retry is asked.",
    )
    reconnect_min_s: float = Field(default=1.0, gt=0, le=3600)
    reconnect_max_s: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("system_id", "system_type", "address_range", "service_type")
    @classmethod
    def _ascii(cls, value: str) -> str:
        if not value.isascii() or not value.isprintable():
            raise ValueError("must be printable ASCII")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if not secret.isascii() or "\0" in secret or len(secret) > 64:
            raise ValueError("must be ASCII, at most 64 characters (SMPP 3.4 itself allows 8)")
        return value

    @field_validator("retry_statuses")
    @classmethod
    def _statuses(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not all(0 < status <= 0xFFFFFFFF for status in value):
            raise ValueError("must be command statuses such as 0x401")
        return value

    @model_validator(mode="after")
    def _backoff(self) -> SmppSettings:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must not be below reconnect_min_s")
        return self


def sender_kind(value: str) -> SenderKind:
    """Which TON/NPI pair a sender takes; ValueError for what no SMSC would accept."""
    return sms_senders.sender_kind(value, punctuation=_ID_PUNCTUATION)


def read_settings(name: str, options: Mapping[str, Any]) -> SmppSettings:
    """Validate ``options``; the error names the channel and the setting, never a secret."""
    return read_options(SmppSettings, options, f"SMPP channel {name!r}")
