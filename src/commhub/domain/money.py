"""Money: an exact amount in one currency, and totals that never add two currencies.

Amounts are :class:`~decimal.Decimal` from the request to the database column
(``NUMERIC``); a float never holds one. The currency is an ISO 4217 code that
Babel knows, and an amount may carry no more decimals than that currency has
(two for RUB and EUR, none for JPY, three for KWD), so a total is exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from babel.numbers import get_currency_precision, get_territory_currencies, list_currencies

from commhub.domain.contacts import FieldError

MAX_AMOUNT: Final = Decimal("99999999999999.9999")
"""A hundred trillion less a little: what every amount column holds exactly (on SQLite in
ten-thousandths within a 64-bit integer, with room to add a few together)."""

_CURRENCIES: Final = frozenset(list_currencies())


@dataclass(frozen=True, slots=True, order=True)
class Money:
    currency: str
    amount: Decimal


def read_currency(value: str, field: str = "currency") -> str:
    """An ISO 4217 code, upper case; :class:`FieldError` naming ``field`` otherwise."""
    code = value.strip().upper()
    if code not in _CURRENCIES or len(code) != 3:
        raise FieldError(field, f"unknown currency {value!r}; use an ISO 4217 code such as RUB")
    return code


def read_amount(
    value: Decimal | int | str, currency: str, field: str = "amount", *, zero: bool = True
) -> Decimal:
    """An exact, non-negative amount with no more decimals than ``currency`` has.

    A float is refused (it cannot say 0.1 exactly), so JSON numbers reach here
    as text or :class:`Decimal`.
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise FieldError(field, 'give the amount as a decimal string, e.g. "1500.00"')
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError):
        raise FieldError(field, f"{value!r} is not an amount") from None
    if not amount.is_finite():
        raise FieldError(field, "the amount must be a number")
    if amount < 0:
        raise FieldError(field, "the amount cannot be negative")
    if not zero and amount == 0:
        raise FieldError(field, "the amount must be more than zero")
    if amount > MAX_AMOUNT:
        raise FieldError(field, "the amount is too large")
    places = get_currency_precision(currency)
    exponent = amount.as_tuple().exponent
    if (
        isinstance(exponent, int)
        and -exponent > places
        and amount != amount.quantize(Decimal(1).scaleb(-places))
    ):
        raise FieldError(field, f"{currency} has {places} decimal places")
    return amount.quantize(Decimal(1).scaleb(-places))


def exact(amount: Decimal, currency: str) -> Decimal:
    """``amount`` with its currency's decimals (the column keeps four: 10.5000 → 10.50)."""
    return amount.quantize(Decimal(1).scaleb(-get_currency_precision(currency)))


def totals(amounts: Iterable[Money]) -> list[Money]:
    """One sum per currency, in currency order: two currencies are never added."""
    sums: dict[str, Decimal] = {}
    for money in amounts:
        sums[money.currency] = sums.get(money.currency, Decimal(0)) + money.amount
    return [Money(code, exact(sums[code], code)) for code in sorted(sums)]


def default_currency(region: str) -> str:
    """The currency of the hub's phone region (RU → RUB), for deals that name none."""
    found = get_territory_currencies(region.upper(), tender=True, non_tender=False)
    return found[0] if found else "EUR"
