"""Deals and pipelines: the words (stage kinds, sources) and the rules on what a person types."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Final

from commhub.domain.catalog import N_
from commhub.domain.contacts import FieldError


class StageKind(StrEnum):
    """Open stages are the way to a sale; reaching a won or a lost stage closes the deal."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"

    @property
    def closes(self) -> bool:
        return self is not StageKind.OPEN


class DealSource(StrEnum):
    """Where a deal came from: the funnel and the start page split results by it."""

    CALL = "call"
    EMAIL = "email"
    SMS = "sms"
    CAMPAIGN = "campaign"
    CALL_LIST = "call_list"
    MANUAL = "manual"
    IMPORT = "import"


PRESET_NAMES: Final[dict[str, str]] = {
    "sales": N_("Sales"),
    "new_lead": N_("New lead"),
    "in_progress": N_("In progress"),
    "proposal": N_("Proposal / invoice"),
    "won": N_("Won (paid)"),
    "lost": N_("Lost"),
}
"""The shipped names in English; the console shows them in each viewer's language
(``web/ui/stage_names.py``)."""

AUTO_CHANNELS: Final = ("call", "email")
"""Inbound channels whose first message from a contact with no open deal may open one."""

MAX_TITLE: Final = 300
MAX_NEXT_STEP: Final = 500
MAX_LOST_REASON: Final = 500
MAX_NOTES: Final = 20_000
MAX_STAGE_NAME: Final = 200
MAX_INVOICE_NUMBER: Final = 100


def shown_name(name: str, preset: str | None) -> str:
    """An admin's name, else the shipped one (English: translate with the preset as key)."""
    return name or PRESET_NAMES.get(preset or "", preset or "")


def read_title(value: str, field: str = "title") -> str:
    title = " ".join(value.split())
    if not title:
        raise FieldError(field, "give the deal a title")
    if len(title) > MAX_TITLE:
        raise FieldError(field, f"a title holds at most {MAX_TITLE} characters")
    return title


def read_text(value: str, field: str, limit: int) -> str:
    text = value.strip()
    if len(text) > limit:
        raise FieldError(field, f"at most {limit} characters")
    return text


def read_stage_name(value: str, field: str = "name") -> str:
    name = " ".join(value.split())
    if not name:
        raise FieldError(field, "give the stage a name")
    if len(name) > MAX_STAGE_NAME:
        raise FieldError(field, f"a name holds at most {MAX_STAGE_NAME} characters")
    return name


def read_source(value: str, field: str = "source") -> DealSource:
    try:
        return DealSource(value)
    except ValueError:
        known = ", ".join(s.value for s in DealSource)
        raise FieldError(field, f"unknown source {value!r}; one of {known}") from None


def read_kind(value: str, field: str = "kind") -> StageKind:
    try:
        return StageKind(value)
    except ValueError:
        raise FieldError(field, f"unknown kind {value!r}; one of open, won, lost") from None


def check_invoice_dates(issued_on: date, due_on: date) -> None:
    if due_on < issued_on:
        raise FieldError("due_on", "the due date cannot be before the issue date")


def read_invoice_number(value: str, field: str = "number") -> str:
    number = value.strip()
    if not number:
        raise FieldError(field, "give the invoice a number")
    if len(number) > MAX_INVOICE_NUMBER:
        raise FieldError(field, f"a number holds at most {MAX_INVOICE_NUMBER} characters")
    return number
