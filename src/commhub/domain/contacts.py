"""Contacts as a person enters them: validation into a draft the store can save."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from commhub.domain.emails import EmailError, normalize_email
from commhub.domain.phones import Phone, PhoneError, parse_phone

MAX_TAG_LENGTH = 100
CONSENT_CHANNELS = frozenset({"call", "sms", "email"})


class FieldError(ValueError):
    """A value a person typed is wrong; ``field`` names it (``phones[1]``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ConsentChoice:
    channel: str
    purpose: str
    granted: bool


@dataclass(frozen=True, slots=True)
class ContactDraft:
    """A validated contact, ready to be created or merged into an existing one."""

    name: str
    company: str | None = None
    phones: tuple[Phone, ...] = ()
    emails: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    consents: tuple[ConsentChoice, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)


def name_key(text: str) -> str:
    """Case- and space-insensitive lookup form of a name or company."""
    return " ".join(text.split()).casefold()


def normalize_tag(text: str) -> str:
    tag = " ".join(text.split()).casefold()
    if len(tag) > MAX_TAG_LENGTH:
        raise ValueError(f"tag longer than {MAX_TAG_LENGTH} characters")
    return tag


def read_phones(
    values: Iterable[str], region: str, field_name: str = "phones"
) -> tuple[Phone, ...]:
    """Parse every number, naming the first bad one; duplicates collapse."""
    phones: dict[str, Phone] = {}
    for index, value in enumerate(values):
        try:
            phone = parse_phone(value, region)
        except PhoneError as exc:
            raise FieldError(f"{field_name}[{index}]", str(exc)) from None
        phones.setdefault(phone.e164, phone)
    return tuple(phones.values())


def read_emails(values: Iterable[str], field_name: str = "emails") -> tuple[str, ...]:
    emails: dict[str, None] = {}
    for index, value in enumerate(values):
        try:
            emails.setdefault(normalize_email(value), None)
        except EmailError as exc:
            raise FieldError(f"{field_name}[{index}]", str(exc)) from None
    return tuple(emails)


def read_tags(values: Iterable[str]) -> tuple[str, ...]:
    tags: dict[str, None] = {}
    for index, value in enumerate(values):
        try:
            tag = normalize_tag(value)
        except ValueError as exc:
            raise FieldError(f"tags[{index}]", str(exc)) from None
        if tag:
            tags.setdefault(tag, None)
    return tuple(tags)


def read_consent(channel: str, purpose: str, granted: bool, index: int) -> ConsentChoice:
    if channel not in CONSENT_CHANNELS:
        raise FieldError(
            f"consents[{index}].channel", f"channel must be one of {sorted(CONSENT_CHANNELS)}"
        )
    purpose = purpose.strip().casefold()
    if not purpose:
        raise FieldError(f"consents[{index}].purpose", "purpose must not be empty")
    return ConsentChoice(channel=channel, purpose=purpose, granted=granted)


@dataclass(frozen=True, slots=True)
class ConsentView:
    channel: str
    purpose: str
    granted: bool
    source: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class ContactView:
    """A contact with everything on its card except the timeline."""

    id: int
    name: str
    company: str | None
    owner_id: int | None
    phones: list[str]
    emails: list[str]
    tags: list[str]
    consents: list[ConsentView]
    extra: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    merged_into_id: int | None = None
