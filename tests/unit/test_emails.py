"""E-mail normal form: the fast path for plain addresses agrees with the full validator."""

from __future__ import annotations

import random
import string

import pytest
from email_validator import EmailNotValidError, validate_email

from commhub.domain.emails import EmailError, normalize_email


def _validator_says(address: str) -> str | None:
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def _we_say(address: str) -> str | None:
    try:
        return normalize_email(address)
    except EmailError:
        return None


@pytest.mark.parametrize(
    "address",
    [
        "Ivan.Petrov@Example.COM",
        "sales+expo@sub.example.co.uk",
        "a@b.c",
        "x@foo.local",
        "x@mail.localhost",
        "x@site.test",
        "x@a-.com",
        "x@-a.com",
        "x@1.23",
        ".ivan@example.com",
        "ivan.@example.com",
        "iv..an@example.com",
        "ivan@example..com",
        "ivan@xn--80ak6aa92e.com",
        "ivan@ab--cd.com",
        "иван@пример.рф",
        '"quoted"@example.com',
        "ivan@example",
        "ivan@@example.com",
        "a" * 65 + "@example.com",
        "a@" + "b" * 64 + ".com",
        "a@" + ".".join(["b" * 60] * 5) + ".com",
        "  spaced@example.com  ",
        "ivan@example.com\n",
    ],
)
def test_normal_form_is_the_validators(address: str) -> None:
    assert _we_say(address) == _validator_says(address)


def test_random_ascii_addresses_agree_with_the_validator() -> None:
    rng = random.Random(5)
    alphabet = string.ascii_letters + string.digits + ".-_+%@"
    for _ in range(3000):
        local = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12)))
        domain = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 16)))
        address = f"{local}@{domain}"
        assert _we_say(address) == _validator_says(address), address


def test_random_plausible_addresses_agree_with_the_validator() -> None:
    rng = random.Random(11)
    local_chars = string.ascii_letters + string.digits + "._+-%"
    label_chars = string.ascii_lowercase + string.digits + "-"
    tlds = ["com", "RU", "co", "museum", "local", "test", "x1", "onion", "arpa", "c"]
    for _ in range(3000):
        local = "".join(rng.choice(local_chars) for _ in range(rng.randrange(1, 20)))
        labels = [
            "".join(rng.choice(label_chars) for _ in range(rng.randrange(1, 10)))
            for _ in range(rng.randrange(1, 4))
        ]
        address = f"{local}@{'.'.join([*labels, rng.choice(tlds)])}"
        assert _we_say(address) == _validator_says(address), address


def test_unusable_address_names_itself() -> None:
    with pytest.raises(EmailError, match="'ivan@' is not a valid e-mail address"):
        normalize_email("ivan@")
