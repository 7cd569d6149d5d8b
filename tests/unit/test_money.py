"""Amounts are exact, carry their currency's decimals, and totals never mix currencies."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commhub.domain.contacts import FieldError
from commhub.domain.money import (
    MAX_AMOUNT,
    Money,
    default_currency,
    read_amount,
    read_currency,
    totals,
)


@pytest.mark.parametrize(("typed", "code"), [("rub", "RUB"), (" EUR ", "EUR"), ("jpy", "JPY")])
def test_currency_codes_are_read_in_upper_case(typed: str, code: str) -> None:
    assert read_currency(typed) == code


@pytest.mark.parametrize("typed", ["XYZ", "", "RUBLE", "руб", "$"])
def test_an_unknown_currency_names_its_field(typed: str) -> None:
    with pytest.raises(FieldError) as error:
        read_currency(typed, "invoice.currency")
    assert error.value.field == "invoice.currency"


@pytest.mark.parametrize(
    ("typed", "currency", "amount"),
    [
        ("1500", "RUB", Decimal("1500.00")),
        ("1500.5", "RUB", Decimal("1500.50")),
        ("0.10", "EUR", Decimal("0.10")),
        ("1.500", "RUB", Decimal("1.50")),
        ("1500", "JPY", Decimal("1500")),
        ("1500.0", "JPY", Decimal("1500")),
        ("1.234", "KWD", Decimal("1.234")),
        (Decimal("2.5"), "USD", Decimal("2.50")),
        (7, "EUR", Decimal("7.00")),
        ("0", "RUB", Decimal("0.00")),
    ],
)
def test_amounts_carry_their_currencys_decimals(
    typed: str | int | Decimal, currency: str, amount: Decimal
) -> None:
    read = read_amount(typed, currency)
    assert read == amount
    assert read.as_tuple().exponent == amount.as_tuple().exponent


@pytest.mark.parametrize(
    ("typed", "currency"),
    [
        ("1500.5", "JPY"),
        ("1.2345", "KWD"),
        ("0.001", "RUB"),
        ("-1", "RUB"),
        ("-0.01", "EUR"),
        ("abc", "RUB"),
        ("NaN", "RUB"),
        ("Infinity", "RUB"),
        ("1e30", "RUB"),
        (str(MAX_AMOUNT + 1), "RUB"),
    ],
)
def test_wrong_amounts_name_their_field(typed: str, currency: str) -> None:
    with pytest.raises(FieldError) as error:
        read_amount(typed, currency, "lines[0].amount")
    assert error.value.field == "lines[0].amount"


def test_a_float_is_refused_even_when_it_looks_exact() -> None:
    for value in (0.1, 1500.0, True):
        with pytest.raises(FieldError):
            read_amount(value, "RUB")  # type: ignore[arg-type]


def test_zero_may_be_refused() -> None:
    with pytest.raises(FieldError):
        read_amount("0.00", "RUB", zero=False)
    assert read_amount("0.01", "RUB", zero=False) == Decimal("0.01")


def test_totals_never_add_two_currencies() -> None:
    found = totals(
        [
            Money("RUB", Decimal("0.10")),
            Money("EUR", Decimal("5")),
            Money("RUB", Decimal("0.20")),
            Money("JPY", Decimal("100")),
        ]
    )
    assert found == [
        Money("EUR", Decimal("5")),
        Money("JPY", Decimal("100")),
        Money("RUB", Decimal("0.30")),
    ]
    assert totals([]) == []


def test_the_hubs_region_gives_the_default_currency() -> None:
    assert default_currency("ru") == "RUB"
    assert default_currency("DE") == "EUR"
    assert default_currency("JP") == "JPY"


cents = st.integers(min_value=0, max_value=10**12)


@given(st.lists(st.tuples(st.sampled_from(["RUB", "EUR", "KWD"]), cents), max_size=30))
def test_totals_are_exact_sums_per_currency(amounts: list[tuple[str, int]]) -> None:
    monies = [Money(code, read_amount(str(Decimal(n).scaleb(-2)), code)) for code, n in amounts]
    expected = {code: sum(Decimal(n) for c, n in amounts if c == code) / 100 for code, _ in amounts}
    found = totals(monies)
    assert [m.currency for m in found] == sorted(expected)
    assert all(m.amount == expected[m.currency] for m in found)
