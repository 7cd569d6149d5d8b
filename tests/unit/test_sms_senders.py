"""Our SMS senders and purposes as an admin lists them for any gateway, and the hub's base URL."""

from __future__ import annotations

import pytest

from commhub.config import Settings, base_url
from commhub.domain.sms_senders import (
    SenderError,
    purposes,
    sender_id,
    sender_ids,
    sender_kind,
)


@pytest.mark.parametrize(
    "written",
    ["+7 (916) 000-11-22", "+7 916 000 11 22", "+7.916.000.11.22", " +79160001122 "],
)
def test_a_number_loses_what_people_write_between_its_digits(written: str) -> None:
    assert sender_id(written) == "+79160001122"


def test_short_codes_and_sender_ids_keep_their_form_but_lose_surrounding_spaces() -> None:
    assert sender_ids([" 12345 ", "Example Co", "ACME2024"]) == ("12345", "Example Co", "ACME2024")


@pytest.mark.parametrize(
    "written",
    [
        "8 916 123 45 67",  # a national number: which country is not said
        "+7 916",  # too short for E.164
        "+0123456789",  # no country code starts with 0
        "12",  # too short for a short code
        "123456789",  # too long for a short code
        "Twelve Chars",  # one over the 11 characters an id may hold
        "M&S",  # punctuation, unless the gateway allows it
        "Магазин",  # not in the alphabet an id travels in
        "   ",
    ],
)
def test_what_no_gateway_sends_from_is_refused_naming_the_value(written: str) -> None:
    with pytest.raises(SenderError) as refused:
        sender_id(written)

    message = str(refused.value)
    assert repr(written) in message
    assert "E.164" in message and "short code" in message and "sender id" in message


def test_punctuation_a_gateway_allows_is_accepted_and_named_in_refusals() -> None:
    assert sender_id("M&S", punctuation=".&_-") == "M&S"
    assert sender_kind("shop.ru", punctuation=".&_-") == "alphanumeric"

    with pytest.raises(SenderError, match=r"letters, digits, spaces and \.&_-"):
        sender_id("a/b", punctuation=".&_-")


@pytest.mark.parametrize(
    ("sender", "kind"),
    [("+15017122661", "number"), ("12345", "short_code"), ("Shop 24", "alphanumeric")],
)
def test_each_sender_is_told_apart_for_the_gateway_to_address_it(sender: str, kind: str) -> None:
    assert sender_kind(sender) == kind


def test_the_list_keeps_its_order_so_the_first_stays_the_default() -> None:
    assert sender_ids(["Shop", "+1 415 555 0100", "900"]) == ("Shop", "+14155550100", "900")


def test_a_sender_given_twice_however_written_is_refused() -> None:
    with pytest.raises(SenderError, match=r"\+14155550100 given twice"):
        sender_ids(["+14155550100", "+1 (415) 555-0100"])


@pytest.mark.parametrize("given", ["+15017122661", 15017122661, None])
def test_senders_must_be_a_list(given: object) -> None:
    with pytest.raises(SenderError, match="must be a list"):
        sender_ids(given)  # type: ignore[arg-type]


def test_a_sender_that_is_not_text_is_refused_as_a_value_error() -> None:
    with pytest.raises(SenderError, match="15017122661 is not text"):
        sender_ids([15017122661])  # type: ignore[list-item]


def test_purposes_are_matched_without_regard_to_case_or_spaces() -> None:
    assert purposes([" Marketing ", "marketing", "Transactional"]) == frozenset(
        {"marketing", "transactional"}
    )
    assert purposes([]) == frozenset()


@pytest.mark.parametrize(
    ("given", "problem"),
    [("marketing", "must be a list"), (["marketing", " "], "non-empty"), ([1], "non-empty")],
)
def test_a_bare_name_or_a_blank_purpose_is_refused(given: object, problem: str) -> None:
    with pytest.raises(SenderError, match=problem):
        purposes(given)  # type: ignore[arg-type]


def test_a_base_url_loses_its_trailing_slash_and_spaces() -> None:
    assert base_url(" https://hub.example.com/sms/ ") == "https://hub.example.com/sms"


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("hub.example.com", "not an http"),
        ("ftp://hub.example.com", "not an http"),
        ("https://", "not an http"),
        ("https://hub.example.com/?a=1", "no query"),
        ("https://hub.example.com/#top", "no query or fragment"),
    ],
)
def test_a_base_url_a_path_cannot_be_joined_to_is_refused(given: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        base_url(given)


def test_the_hubs_public_url_follows_the_same_rule_and_may_stay_unset() -> None:
    assert Settings(public_url="https://hub.example.com/").public_url == "https://hub.example.com"
    assert Settings(public_url="").public_url == ""
    with pytest.raises(ValueError, match="not an http"):
        Settings(public_url="hub.example.com")
