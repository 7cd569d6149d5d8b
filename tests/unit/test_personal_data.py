"""Phone numbers and e-mail addresses are masked in log text; ids, times and ports are not."""

from __future__ import annotations

import logging
import sys

import pytest

from commhub.domain.personal_data import mask_email, mask_personal_data, mask_phone
from commhub.logs import PrivateFormatter


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("SMS STOP from +79161234567", "SMS STOP from +7916***67"),
        ("CallerIDNum: 79161234567\r\n", "CallerIDNum: 7916***67\r\n"),
        ("Exten: 89161234567", "Exten: 8916***67"),
        ("dial 0079161234567", "dial 0079***67"),
        ("8 (916) 123-45-67", "8916***67"),
        ("+7 (916) 123-45-67;", "+7916***67;"),
        ("8 916 123 45 67", "8916***67"),
        ("(212) 555-0123", "212***23"),
        ("+44 20 7946 0958", "+4420***58"),
        ("To=%2B79161234567&From=%2b15005550006", "To=%2B7916***67&From=%2b1500***06"),
        ("Local/79161234567@from-trunk-00000002;1", "Local/7916***67@from-trunk-00000002;1"),
        ("Key (e164)=(+79161234567) already exists.", "Key (e164)=(+7916***67) already exists."),
        ("short 1234567", "short ***67"),
        ("MAIL FROM:<ivan.petrov@example.com>", "MAIL FROM:<i***@example.com>"),
        ("to=ivan%40example.com&x=1", "to=i***%40example.com&x=1"),
        ("From: Ivan <IVAN+sales@Example.CO.uk>", "From: Ivan <I***@Example.CO.uk>"),
    ],
)
def test_numbers_and_addresses_are_masked_keeping_enough_to_debug(text: str, masked: str) -> None:
    assert mask_personal_data(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-04 08:08:04,123 INFO commhub.web: started",
        "2026-12-04T08:08:04.123456+00:00",
        "Uniqueid: 1733299200.45 Linkedid: 1733299185.12",
        "Timestamp: 1733299200 at 1733299200123 ms",
        "postgresql+asyncpg://postgres@127.0.0.1:5432/commhub",
        "listening on [::1]:8080 and 10.0.0.15:5038",
        "Channel: PJSIP/201-00000001 Exten: 201",
        "job 12345678-1234-1234-1234-123456789012 queued",
        "SID SM0123456789abcdef0123456789abcdef",
        "contacts 101, 102, 1003 and 1001 1002 1003",
        "took 0.0123456 s for 123456 rows",
        "imported 999999 rows",
        "",
    ],
)
def test_ids_times_and_ports_are_left_alone(text: str) -> None:
    assert mask_personal_data(text) == text


def test_a_huge_run_of_digits_is_not_a_number_and_costs_little() -> None:
    digits = "9" * 200_000
    assert mask_personal_data(digits) == digits


def test_masks_hide_at_least_five_digits_and_the_local_part() -> None:
    assert mask_phone("+79161234567") == "+7916***67"
    assert mask_phone("1234567") == "***67"
    assert mask_email("anna@example.com") == "a***@example.com"


def test_the_log_formatter_masks_the_message_its_arguments_and_the_traceback() -> None:
    try:
        raise ValueError("duplicate key ('+79161234567', 'ivan@example.com')")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "panoramisk", logging.DEBUG, __file__, 1, "got %s from %s", ("79161234567", "a@b.io"), None
    )
    record.exc_info = exc_info
    line = PrivateFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert line.startswith("DEBUG panoramisk: got 7916***67 from a***@b.io")
    assert "+7916***67" in line and "i***@example.com" in line
    assert "1234567" not in line and "ivan@" not in line
