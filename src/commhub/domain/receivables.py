"""Receivables: what is still owed on invoices, and how late it is."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from commhub.domain.contacts import FieldError


class Ageing(StrEnum):
    """How far past its due date an unpaid invoice is, in the viewer's today."""

    NOT_DUE = "not_due"
    DAYS_1_30 = "1_30"
    DAYS_31_60 = "31_60"
    OVER_60 = "60_plus"


def ageing(due_on: date, today: date) -> Ageing:
    late = (today - due_on).days
    if late <= 0:
        return Ageing.NOT_DUE
    if late <= 30:
        return Ageing.DAYS_1_30
    if late <= 60:
        return Ageing.DAYS_31_60
    return Ageing.OVER_60


def days_overdue(due_on: date, today: date) -> int:
    return max(0, (today - due_on).days)


def check_payment(amount: Decimal, owed: Decimal, field: str = "amount") -> None:
    """A payment is more than zero and no more than what is still owed."""
    if amount <= 0:
        raise FieldError(field, "a payment must be more than zero")
    if amount > owed:
        raise FieldError(field, f"only {owed} is still owed on this invoice")
