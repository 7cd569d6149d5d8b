"""Made-up customers' numbers in the four countries the benchmark mixes, and ways to write them.

Numbers are drawn at random in each country's mobile ranges and kept only
when ``parse_phone`` accepts them, so the stored rows are what the hub would
store. The written forms are the ones PBXs, gateways and spreadsheets send.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import phonenumbers
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from commhub.domain.phones import Phone, PhoneError, parse_phone


@dataclass(frozen=True, slots=True)
class Country:
    region: str
    code: str
    draw: Callable[[random.Random], str]
    """A candidate national significant number (may be invalid: the caller checks)."""


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


_RU_MOBILE: Final = (
    "903 905 906 909 910 911 912 913 914 915 916 917 918 919 920 921 922 923 924 925 926 927 "
    "928 929 930 931 932 933 934 936 937 938 939 950 951 952 953 960 961 962 963 964 965 966 "
    "967 968 977 978 980 981 982 983 984 985 986 987 988 989 991 992 993 994 995 996 997 999 "
    "495 499 812"
).split()
_US_AREA: Final = "201 202 212 213 305 312 415 503 602 617 646 702 713 718 917 929".split()
_DE_MOBILE: Final = "151 152 157 159 160 162 163 170 171 172 173 174 175 176 177 178 179".split()

COUNTRIES: Final = (
    Country("RU", "7", lambda rng: rng.choice(_RU_MOBILE) + _digits(rng, 7)),
    Country("GB", "44", lambda rng: "7" + rng.choice("456789") + _digits(rng, 8)),
    Country(
        "US",
        "1",
        lambda rng: rng.choice(_US_AREA) + rng.choice("23456789") + _digits(rng, 6),
    ),
    Country(
        "DE",
        "49",
        lambda rng: (prefix := rng.choice(_DE_MOBILE)) + _digits(rng, 8 if prefix < "170" else 7),
    ),
)
WEIGHTS: Final = (50, 20, 15, 15)
HOME_REGION: Final = "RU"
"""The hub's default region: numbers without a country code are read as Russian."""


@dataclass(frozen=True, slots=True)
class Number:
    """A valid number: its country, its national significant digits and what the hub stores."""

    country: Country
    national: str
    phone: Phone


def draw_number(rng: random.Random) -> Number:
    """A random valid number, written the way a spreadsheet would and read by ``parse_phone``."""
    while True:
        country = rng.choices(COUNTRIES, WEIGHTS)[0]
        national = country.draw(rng)
        written, region = storage_form(rng, country, national)
        try:
            phone = parse_phone(written, region)
        except PhoneError:
            continue
        return Number(country, national, phone)


def storage_form(rng: random.Random, country: Country, national: str) -> tuple[str, str]:
    """How an imported sheet writes the number, and the region it is read in."""
    if country.region == HOME_REGION and rng.random() < 0.5:
        return f"8 ({national[:3]}) {national[3:6]}-{national[6:8]}-{national[8:]}", HOME_REGION
    if rng.random() < 0.3:
        return trunk_form(country, national), country.region
    return f"+{country.code} {national[:3]} {national[3:]}", HOME_REGION


def trunk_form(country: Country, national: str) -> str:
    """The number as dialled at home in its own country."""
    if country.region == "US":
        return f"({national[:3]}) {national[3:6]}-{national[6:]}"
    if country.region == "RU":
        return f"8 {national[:3]} {national[3:6]}-{national[6:8]}-{national[8:]}"
    return f"0{national[:4]} {national[4:]}"


async def stored_numbers(
    database: AsyncSession | AsyncConnection, count: int, rng: random.Random
) -> list[tuple[str, str, int]]:
    """``count`` stored phone numbers at random: (E.164, match key, contact id)."""
    highest = (await database.execute(text("SELECT max(id) FROM contact_points"))).scalar_one()
    ids = rng.sample(range(1, highest + 1), min(count, highest))
    rows = await database.execute(
        text("SELECT value, match_key, contact_id FROM contact_points WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        ),
        {"ids": ids},
    )
    return [(value, key, contact_id) for value, key, contact_id in rows]


async def unknown_numbers(
    database: AsyncSession | AsyncConnection, count: int, rng: random.Random
) -> list[Number]:
    """``count`` valid numbers whose match key no contact in ``database`` has."""
    found: list[Number] = []
    while len(found) < count:
        candidates = [draw_number(rng) for _ in range(count - len(found))]
        taken = set(
            (
                await database.execute(
                    text(
                        "SELECT match_key FROM contact_points WHERE match_key IN :keys"
                    ).bindparams(bindparam("keys", expanding=True)),
                    {"keys": [n.phone.match_key for n in candidates]},
                )
            ).scalars()
        )
        found += [n for n in candidates if n.phone.match_key not in taken]
    return found


def number_of(e164: str) -> Number:
    """The stored E.164 back as a :class:`Number` (to write it in other forms)."""
    parsed = phonenumbers.parse(e164)
    country = next(c for c in COUNTRIES if c.code == str(parsed.country_code))
    national = phonenumbers.national_significant_number(parsed)
    return Number(country, national, parse_phone(e164, HOME_REGION))


def non_canonical_forms(number: Number) -> list[tuple[str, str]]:
    """The number as PBX trunks and gateways present it, each with the channel's region.

    A Russian trunk prefixes 8 (national) or 810 / 00 (international); a foreign
    number may arrive without its country code on a trunk set to Russia.
    """
    n, code = number.national, number.country.code
    forms = [
        (f"00{code}{n}", HOME_REGION),
        (f"810 {code} {n[:3]} {n[3:]}", HOME_REGION),
        (f"+{code} ({n[:3]}) {n[3:6]}-{n[6:]}", HOME_REGION),
        (trunk_form(number.country, n), number.country.region),
    ]
    if number.country.region == HOME_REGION:
        forms.append((f"8{n}", HOME_REGION))
    else:
        forms.append((f"{n[:3]} {n[3:]}", HOME_REGION))  # foreign, country code lost
    return forms
