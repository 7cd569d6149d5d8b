"""Personal data in free text: finding phone numbers and e-mail addresses and masking them.

Logs carry text the hub did not write: protocol lines from a PBX, an SMTP or
IMAP server, a gateway's request, a database error. :func:`mask_personal_data`
masks whatever in such text looks like a customer's phone number or e-mail
address, keeping enough to debug with (``+7916***67``, ``i***@example.com``)
and leaving alone what only resembles one: timestamps and dates, decimals and
Asterisk unique ids (``1733299200.45``), IP addresses and ports, UUIDs and
other ids made of letters and digits, extensions of five digits or fewer.

What counts as a number, deliberately generous since a false positive only
hides a little debugging detail:

* ``+`` (or a URL-encoded ``%2B``) followed by 7 to 15 digits, spaces, hyphens
  and parentheses allowed in between (E.164 allows 15 digits, ITU-T E.164 §6);
* a run of 7 to 15 bare digits standing alone (``89161234567``,
  ``CallerIDNum: 79161234567``, ``from=0079161234567``), except the 10- and
  13-digit runs starting with 1 that are Unix times in seconds or milliseconds;
* national formats written with hyphens or parentheses (``8 (916) 123-45-67``,
  ``212-555-0123``), or with spaces in the Russian or North American grouping
  (``916 123 45 67``, ``212 555 0123``).

Addresses are anything ``local@domain.tld`` (or ``local%40domain.tld``), so
Message-IDs and SIP URIs are masked too.
"""

from __future__ import annotations

import re
from typing import Final

MIN_PHONE_DIGITS: Final = 7
MAX_PHONE_DIGITS: Final = 15
_KEPT_TAIL: Final = 2
_MIN_HIDDEN: Final = 5
"""At least this many digits of a number are hidden, however short it is."""

_NOT_AFTER: Final = r"(?<![\w.+-])"
"""A number or address starts a token: not inside a word, a decimal or a hyphenated id."""
_NOT_BEFORE: Final = r"(?![\w:]|[.\-/]\d)"
"""...and ends one: not followed by letters, a port or time (``:``), or more digits."""
_BARE: Final = rf"{_NOT_AFTER}\d{{7,15}}{_NOT_BEFORE}"

# Repetitions are bounded, so a long run of digits costs linear time, never a backtracking storm.
_PERSONAL: Final = re.compile(
    rf"""
    (?P<email>
        {_NOT_AFTER}[\w.+-]++(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{{2,}}\b
    )
  | (?P<date>{_NOT_AFTER}\d{{4}}-\d{{2}}-\d{{2}}(?![\w-]))
  | (?P<international>
        {_NOT_AFTER}(?:\+|%2[Bb])\d(?:[ \-]?(?:\(\d{{1,5}}\)|\d)){{6,14}}{_NOT_BEFORE}
    )
  | (?P<national>
        {_NOT_AFTER}(?:\(\d{{1,5}}\)|\d{{1,5}})(?:[ \-]?\(\d{{1,5}}\)|[ \-]\d{{1,7}}){{1,6}}
        {_NOT_BEFORE}
    )
  | (?P<bare>{_BARE})
    """,
    re.VERBOSE,
)
_BARE_ONLY: Final = re.compile(_BARE)
_UNIX_TIME: Final = re.compile(r"1\d{9}|1\d{12}")
_SPACED_NATIONAL: Final = re.compile(r"(?:\d{1,4} )?\d{3} (?:\d{3} \d{2} \d{2}|\d{3} \d{4}|\d{7})")
"""Numbers grouped by spaces alone: the Russian (916 123 45 67) and North American
(212 555 0123) groupings; other runs of short numbers are counts and ids."""


def mask_personal_data(text: str) -> str:
    """``text`` with every phone number and e-mail address in it masked."""
    return _PERSONAL.sub(_masked, text)


def mask_phone(number: str) -> str:
    """``+79161234567`` → ``+7916***67``: the country and operator code, and two last digits."""
    prefix = ""
    if number.startswith("+"):
        prefix = "+"
    elif number[:3].upper() == "%2B":
        prefix = number[:3]
    digits = "".join(ch for ch in number[len(prefix) :] if ch.isdigit())
    head = max(0, min(4, len(digits) - _KEPT_TAIL - _MIN_HIDDEN))
    return f"{prefix}{digits[:head]}***{digits[-_KEPT_TAIL:]}"


def mask_email(address: str) -> str:
    """``ivan@example.com`` → ``i***@example.com``: the first letter and the domain."""
    at = "%40" if "@" not in address else "@"
    local, _, domain = address.partition(at)
    return f"{local[:1]}***{at}{domain}"


def _masked(found: re.Match[str]) -> str:
    text = found.group()
    kind = found.lastgroup
    if kind == "email":
        return mask_email(text)
    if kind == "date":
        return text
    if kind == "national" and not _looks_national(text):
        return _BARE_ONLY.sub(_masked_bare, text)
    digits = sum(ch.isdigit() for ch in text)
    if not MIN_PHONE_DIGITS <= digits <= MAX_PHONE_DIGITS:
        return text
    if kind == "bare" and _UNIX_TIME.fullmatch(text):
        return text
    return mask_phone(text)


def _looks_national(text: str) -> bool:
    if not MIN_PHONE_DIGITS <= sum(ch.isdigit() for ch in text) <= MAX_PHONE_DIGITS:
        return False
    return any(ch in text for ch in "-()") or _SPACED_NATIONAL.fullmatch(text) is not None


def _masked_bare(found: re.Match[str]) -> str:
    text = found.group()
    return text if _UNIX_TIME.fullmatch(text) else mask_phone(text)
