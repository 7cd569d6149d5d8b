"""Phone numbers: the one place that reads, stores and matches them.

Every path that meets a phone number — screen pop, inbound SMS, import,
dedupe, search — goes through this module, so a number written as
``8 (916) 123-45-67`` on a Russian trunk, ``+7 916 1234567`` in a CRM export
and ``0079161234567`` from a gateway all lead to the same contact.

Two values are stored per number:

* ``e164`` — the canonical form (``+79161234567``), used for exact matches and
  for dialling;
* ``match_key`` — the last :data:`MATCH_KEY_DIGITS` digits of the national
  significant number. It finds the contact when a PBX or gateway presents the
  number in a form that cannot be read back to the same E.164 (a foreign
  number without its country code, a trunk configured for the wrong region).
  The key carries no country: a number that names its country explicitly
  (``+44…``, ``0044…``, ``810 44…``) only ever matches contacts in that
  country, whether or not it is a valid number there; see :func:`decide`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import phonenumbers
import phonenumbers.timezone
from phonenumbers import CountryCodeSource, PhoneNumberFormat

MATCH_KEY_DIGITS: Final = 9
"""Nine trailing digits: long enough to be near-unique within a contact base,
short enough to survive any trunk prefix, IDD or country code in front."""

MAX_EXTENSION_DIGITS: Final = 5
"""Numbers of this many digits or fewer are internal extensions or service
short codes (201, 1001, 112, 900): never a customer."""

_WITHHELD: Final = frozenset(
    {"", "anonymous", "unknown", "<unknown>", "restricted", "private", "unavailable", "withheld"}
)
_DIGITS = re.compile(r"\d")
_ALLOWED = re.compile(r"^[\d\s().+\-/]*$")


class PhoneError(ValueError):
    """The text cannot be read as a customer's phone number; the message says why."""


class NumberKind(StrEnum):
    """What an incoming caller/recipient string turned out to be."""

    PUBLIC = "public"
    EXTENSION = "extension"
    WITHHELD = "withheld"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Phone:
    """A customer's number, as stored on a contact."""

    e164: str
    match_key: str

    @property
    def region(self) -> str | None:
        """ISO region of the number (``RU``, ``GB``), if the metadata knows it."""
        parsed = phonenumbers.parse(self.e164)
        return phonenumbers.region_code_for_number(parsed)

    def international(self) -> str:
        """The number as a person writes it for someone abroad: ``+7 916 123-45-67``."""
        return phonenumbers.format_number(
            phonenumbers.parse(self.e164), PhoneNumberFormat.INTERNATIONAL
        )

    def national(self) -> str:
        """The number as a person writes it at home: ``8 (916) 123-45-67``."""
        return phonenumbers.format_number(phonenumbers.parse(self.e164), PhoneNumberFormat.NATIONAL)


def display_number(number: str, region: str) -> str:
    """A stored number written for a person in ``region``: national format for a number
    of that country, international otherwise, and as given when it is no E.164 number
    (an extension, a short code, a withheld caller)."""
    if not number.startswith("+"):
        return number
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return number
    same_country = phonenumbers.region_code_for_number(parsed) == region
    style = PhoneNumberFormat.NATIONAL if same_country else PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(parsed, style)


@dataclass(frozen=True, slots=True)
class PhoneQuery:
    """An incoming number read for lookup: what to search by and how strictly.

    ``e164`` is ``None`` when the text could not be read as a valid number in
    the given region. ``country_code`` is the country calling code the text
    itself named (``+44…``, ``0044…``, ``810 44…``: 44), valid number or not,
    and ``None`` when the number was read in the default region: a contact
    with the same trailing digits in another country is not the same person.
    """

    raw: str
    kind: NumberKind
    e164: str | None = None
    match_key: str | None = None
    country_code: int | None = None

    @property
    def explicit_country(self) -> bool:
        """The text named its country: matches stay within that country."""
        return self.country_code is not None

    @property
    def searchable(self) -> bool:
        """Only public numbers are ever matched to customers."""
        return self.kind is NumberKind.PUBLIC and self.match_key is not None


def match_key_of(national_digits: str) -> str:
    """Trailing digits of a national significant number (or the whole, if shorter)."""
    return national_digits[-MATCH_KEY_DIGITS:]


def parse_phone(text: str, region: str) -> Phone:
    """Read a customer's number for storage; raise :class:`PhoneError` if it is not one.

    ``region`` is the ISO code used for numbers written without their country
    code (the hub's default, or the channel's override).
    """
    query = read_number(text, region)
    if query.kind is NumberKind.WITHHELD:
        raise PhoneError(f"no phone number in {text!r}")
    if query.kind is NumberKind.EXTENSION:
        raise PhoneError(f"{text!r} is too short for a customer's number (an extension?)")
    if query.e164 is None or query.match_key is None:
        raise PhoneError(f"{text!r} is not a valid phone number for region {region}")
    return Phone(e164=query.e164, match_key=query.match_key)


def read_number(text: str, region: str) -> PhoneQuery:
    """Classify and normalise a number as a PBX, gateway or spreadsheet presents it.

    Never raises: garbage comes back as ``NumberKind.INVALID`` so that callers
    on the hot path (screen pop) can log it and move on.
    """
    raw = text.strip()
    if raw.lower() in _WITHHELD:
        return PhoneQuery(raw=raw, kind=NumberKind.WITHHELD)
    if not _ALLOWED.match(raw):
        return PhoneQuery(raw=raw, kind=NumberKind.INVALID)
    digits = "".join(_DIGITS.findall(raw))
    if not digits:
        return PhoneQuery(raw=raw, kind=NumberKind.WITHHELD)
    if len(digits) <= MAX_EXTENSION_DIGITS and not raw.startswith("+"):
        return PhoneQuery(raw=raw, kind=NumberKind.EXTENSION)
    try:
        parsed = phonenumbers.parse(_compact(raw, digits), region.upper(), keep_raw_input=True)
    except phonenumbers.NumberParseException as exc:
        plus = raw.lstrip("( ").startswith("+")
        if plus or exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            # It names a country (``+``, or the region's international prefix) that
            # does not exist or cannot be read: nothing to match it within.
            return PhoneQuery(raw=raw, kind=NumberKind.INVALID)
        parsed = None
    if parsed is not None:
        national = phonenumbers.national_significant_number(parsed)
        explicit = parsed.country_code_source != CountryCodeSource.FROM_DEFAULT_COUNTRY
        country = parsed.country_code if explicit else None
        if phonenumbers.is_valid_number(parsed):
            return PhoneQuery(
                raw=raw,
                kind=NumberKind.PUBLIC,
                e164=phonenumbers.format_number(parsed, PhoneNumberFormat.E164),
                match_key=match_key_of(national),
                country_code=country,
            )
        if explicit:
            if len(national) < MATCH_KEY_DIGITS:
                return PhoneQuery(raw=raw, kind=NumberKind.INVALID)
            # Not valid in the country it names (a range newer than the metadata, a
            # mangled trunk): searchable by its trailing digits, within that country.
            return PhoneQuery(
                raw=raw,
                kind=NumberKind.PUBLIC,
                match_key=match_key_of(national),
                country_code=country,
            )
    if len(digits) < MATCH_KEY_DIGITS:
        return PhoneQuery(raw=raw, kind=NumberKind.INVALID)
    # Not valid as written in this region (a foreign number without its
    # country code, or a wrongly configured trunk): still searchable by its
    # trailing digits, never by an E.164 we would have to guess.
    return PhoneQuery(raw=raw, kind=NumberKind.PUBLIC, match_key=match_key_of(digits))


def _compact(raw: str, digits: str) -> str:
    """The number without its punctuation, for ``phonenumbers.parse``.

    The parser reads ``+7 (916) 123-45-67`` and ``+79161234567`` alike but
    spends a fifth of its time stripping the punctuation; a leading ``+`` is
    what it must keep (it says the country code follows). A ``+`` anywhere
    else is left for the parser to judge on the text as written.
    """
    plus = raw.lstrip("( ").startswith("+")
    if raw.count("+") != int(plus):
        return raw
    return "+" + digits if plus else digits


@dataclass(frozen=True, slots=True)
class PhoneCandidate:
    """A stored number that shares the query's match key."""

    contact_id: int
    e164: str


def decide(query: PhoneQuery, candidates: list[PhoneCandidate]) -> list[int]:
    """The contacts an incoming number belongs to, best evidence first.

    Exact E.164 matches win. Without one, candidates that only share the
    trailing digits count unless the caller's number named its own country:
    then a valid number matches only itself, and one that is not valid in the
    country it names only contacts in that country (a different country code
    is a different subscriber). The caller decides what one, none or several
    ids mean (match, unknown, ambiguous).
    """
    exact = _distinct(c.contact_id for c in candidates if c.e164 == query.e164)
    if exact or (query.explicit_country and query.e164 is not None):
        return exact
    if query.country_code is not None:
        # Country calling codes are a prefix code (ITU-T E.164): no code begins another.
        prefix = f"+{query.country_code}"
        return _distinct(c.contact_id for c in candidates if c.e164.startswith(prefix))
    return _distinct(c.contact_id for c in candidates)


def _distinct(ids: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(ids))


def zone_of_number(e164: str) -> str | None:
    """The IANA zone a number is in, when the number alone tells (one zone for it), else ``None``.

    Landlines and small countries map to one zone; a mobile number of a country
    spanning several (a Russian +79…) does not, and is left to the caller's fallback.
    """
    try:
        zones = phonenumbers.timezone.time_zones_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return None
    return zones[0] if len(zones) == 1 and zones[0] != "Etc/Unknown" else None
