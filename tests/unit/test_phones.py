"""The phone identity rules on real-world formats, and on garbage."""

from __future__ import annotations

import pytest

from commhub.domain.phones import (
    NumberKind,
    PhoneCandidate,
    PhoneError,
    decide,
    parse_phone,
    read_number,
)

# (as written, region of the trunk/sheet, E.164 it must become)
SAME_NUMBER = [
    # Russia: trunk prefix 8, IDD 810, with and without country code
    ("+7 916 123-45-67", "RU", "+79161234567"),
    ("8 (916) 123-45-67", "RU", "+79161234567"),
    ("89161234567", "RU", "+79161234567"),
    ("79161234567", "RU", "+79161234567"),
    ("9161234567", "RU", "+79161234567"),
    ("8-916-123-45-67", "RU", "+79161234567"),
    ("810 7 916 123 45 67", "RU", "+79161234567"),
    ("+7 (495) 123-45-67", "GB", "+74951234567"),
    ("0079161234567", "DE", "+79161234567"),
    # United Kingdom: trunk prefix 0, IDD 00
    ("020 7946 0958", "GB", "+442079460958"),
    ("(020) 7946-0958", "GB", "+442079460958"),
    ("+44 (0)20 7946 0958", "RU", "+442079460958"),
    ("0044 20 7946 0958", "DE", "+442079460958"),
    ("07911 123456", "GB", "+447911123456"),
    ("810 44 20 7946 0958", "RU", "+442079460958"),
    # United States: 1 as trunk/country code, IDD 011
    ("(415) 555-2671", "US", "+14155552671"),
    ("415.555.2671", "US", "+14155552671"),
    ("1-415-555-2671", "US", "+14155552671"),
    ("+1 415 555 2671", "GB", "+14155552671"),
    ("011 44 20 7946 0958", "US", "+442079460958"),
    # Germany: trunk prefix 0, IDD 00, variable-length numbers
    ("030 12345678", "DE", "+493012345678"),
    ("030/123 456 78", "DE", "+493012345678"),
    ("+49 (0)30 12345678", "US", "+493012345678"),
    ("0049 30 12345678", "GB", "+493012345678"),
    ("0151 23456789", "DE", "+4915123456789"),
]


@pytest.mark.parametrize(("written", "region", "e164"), SAME_NUMBER)
def test_number_as_written_is_stored_as_e164(written: str, region: str, e164: str) -> None:
    assert parse_phone(written, region).e164 == e164


@pytest.mark.parametrize(("written", "region", "e164"), SAME_NUMBER)
def test_every_form_of_a_number_shares_its_match_key(written: str, region: str, e164: str) -> None:
    assert read_number(written, region).match_key == parse_phone(e164, "US").match_key


@pytest.mark.parametrize(
    "garbage",
    ["", "   ", "abc", "+", "++79161234567x", "12-AB-34", "DROP TABLE x", "+0 000", "8" * 40],
)
def test_garbage_is_rejected_with_a_reason(garbage: str) -> None:
    with pytest.raises(PhoneError) as raised:
        parse_phone(garbage, "RU")
    assert str(raised.value)


@pytest.mark.parametrize("extension", ["201", "1001", "12345", "112", "9 0 0"])
def test_short_internal_numbers_are_extensions_never_customers(extension: str) -> None:
    query = read_number(extension, "RU")
    assert query.kind is NumberKind.EXTENSION
    assert not query.searchable
    with pytest.raises(PhoneError, match="extension"):
        parse_phone(extension, "RU")


@pytest.mark.parametrize("withheld", ["anonymous", "Anonymous", "<unknown>", "Restricted", ""])
def test_withheld_caller_ids_are_not_searchable(withheld: str) -> None:
    assert read_number(withheld, "RU").kind is NumberKind.WITHHELD


def test_foreign_number_without_country_code_is_still_searchable_by_key() -> None:
    query = read_number("02079460958", "RU")
    assert query.kind is NumberKind.PUBLIC
    assert query.e164 is None
    assert query.match_key == parse_phone("+442079460958", "GB").match_key


def test_exact_match_wins_over_same_trailing_digits() -> None:
    query = read_number("89161234567", "RU")
    candidates = [PhoneCandidate(1, "+49161234567"), PhoneCandidate(2, "+79161234567")]
    assert decide(query, candidates) == [2]


def test_explicit_country_code_never_matches_another_country() -> None:
    query = read_number("+49 916 1234567", "RU")
    assert decide(query, [PhoneCandidate(1, "+79161234567")]) == []


def test_a_number_read_in_the_default_region_names_no_country() -> None:
    assert read_number("89161234567", "RU").country_code is None
    assert read_number("+49 916 1234567", "RU").country_code == 49
    assert read_number("0044 20 7946 0958", "DE").country_code == 44


# Same nine trailing digits (234567890) in Russia and in the United Kingdom.
RU_AND_GB = [PhoneCandidate(1, "+79234567890"), PhoneCandidate(2, "+447234567890")]


@pytest.mark.parametrize(
    ("written", "region"),
    [
        ("+7 123 456 7890", "RU"),
        ("+7 123 456 7890", "GB"),
        ("810 7 123 456 7890", "RU"),
        ("00 7 123 456 7890", "GB"),
        ("011 7 123 456 7890", "US"),
    ],
)
def test_invalid_number_with_explicit_country_code_matches_only_within_that_country(
    written: str, region: str
) -> None:
    query = read_number(written, region)
    assert query.e164 is None and query.country_code == 7
    assert query.match_key == "234567890"
    assert decide(query, RU_AND_GB) == [1]


def test_invalid_number_with_explicit_country_code_and_no_contact_there_matches_nothing() -> None:
    query = read_number("+49 1 234567890", "RU")
    assert query.e164 is None and query.country_code == 49
    assert decide(query, RU_AND_GB) == []


@pytest.mark.parametrize(
    ("written", "region"),
    [("+999 123 456 789", "RU"), ("810 999 123 456 789", "RU"), ("00 999 1234 567890", "GB")],
)
def test_country_code_that_does_not_exist_matches_nothing(written: str, region: str) -> None:
    query = read_number(written, region)
    assert query.kind is NumberKind.INVALID
    assert not query.searchable


def test_number_without_country_code_still_matches_any_country_by_key() -> None:
    query = read_number("1234567890", "RU")
    assert query.e164 is None and query.country_code is None
    assert decide(query, RU_AND_GB) == [1, 2]


def test_key_only_candidates_sharing_a_number_are_all_returned() -> None:
    query = read_number("02079460958", "RU")
    candidates = [PhoneCandidate(3, "+442079460958"), PhoneCandidate(4, "+442079460958")]
    assert decide(query, candidates) == [3, 4]


def test_phone_formats_for_people() -> None:
    phone = parse_phone("89161234567", "RU")
    assert phone.international() == "+7 916 123-45-67"
    assert phone.national() == "8 (916) 123-45-67"
    assert phone.region == "RU"
