"""Our own SMS senders and what they are for, as an admin lists them for a gateway.

Every SMS gateway's ``numbers`` and ``purposes`` settings are read here, so a
number, short code or sender id means the same to the hub whichever gateway
carries it. Unlike :mod:`commhub.domain.phones`, which reads customers'
numbers against the numbering plan of a region, this checks only the form a
gateway takes: the hub's own numbers are written in full (E.164) and may be
ones the numbering metadata does not know yet (a new range, a test number).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, Literal

E164: Final = re.compile(r"\+[1-9]\d{6,14}")
"""ITU-T E.164: a country code and at most 15 digits in all."""

SHORT_CODE: Final = re.compile(r"\d{3,8}")
"""Short codes: 3 to 8 digits, a number only within one country's networks."""

ALPHANUMERIC_MAX: Final = 11
"""An alphanumeric sender travels in the address field as at most 11 GSM 7-bit characters in
10 octets (3GPP TS 23.040 §9.1.2.5)."""

_WRITING: Final = re.compile(r"[\s\-().]")
"""What people put between a number's digits: spaces, dashes, brackets and dots."""

SenderKind = Literal["number", "short_code", "alphanumeric"]


class SenderError(ValueError):
    """A sender or purpose an admin wrote cannot be used; the message names it and says why."""


def sender_kind(sender: str, *, punctuation: str = "") -> SenderKind:
    """What a sender already in the hub's form is; :class:`SenderError` if it is none.

    ``punctuation`` lists the characters beyond letters, digits and spaces
    that the gateway allows in an alphanumeric id (none for Twilio).
    """
    if E164.fullmatch(sender):
        return "number"
    if SHORT_CODE.fullmatch(sender):
        return "short_code"
    if _alphanumeric(punctuation).fullmatch(sender):
        return "alphanumeric"
    raise SenderError(_neither(sender, punctuation))


def sender_id(text: str, *, punctuation: str = "") -> str:
    """A sender an admin wrote, in the hub's form: ``+7 (916) 000-11-22`` → ``+79160001122``.

    Numbers lose what people write between digits; short codes and
    alphanumeric ids lose only surrounding spaces.
    """
    if not isinstance(text, str):
        raise SenderError(f"{text!r} is not text: give a number, a short code or a sender id")
    sender = text.strip()
    if sender.startswith("+"):
        sender = "+" + _WRITING.sub("", sender[1:])
    try:
        sender_kind(sender, punctuation=punctuation)
    except SenderError:
        raise SenderError(_neither(text, punctuation)) from None
    return sender


def sender_ids(values: Iterable[str], *, punctuation: str = "") -> tuple[str, ...]:
    """An admin's list of senders in the hub's form, in order (the first is the default).

    A bare string is refused rather than read letter by letter, and so is a
    sender given twice (however written), which would leave the admin
    unsure which entry the hub uses.
    """
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise SenderError('must be a list, e.g. ["+15017122661", "12345", "Example Co"]')
    senders = tuple(sender_id(value, punctuation=punctuation) for value in values)
    duplicates = sorted({sender for sender in senders if senders.count(sender) > 1})
    if duplicates:
        raise SenderError(f"{', '.join(duplicates)} given twice")
    return senders


def purposes(values: Iterable[str]) -> frozenset[str]:
    """What a gateway is for (``transactional``, ``marketing``…), matched without regard to case.

    An empty set means anything; a bare string or a blank name is refused.
    """
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise SenderError('must be a list, e.g. ["transactional"]')
    names = list(values)
    if not all(isinstance(name, str) and name.strip() for name in names):
        raise SenderError('must be non-empty names, e.g. ["transactional", "marketing"]')
    return frozenset(name.strip().lower() for name in names)


def _alphanumeric(punctuation: str) -> re.Pattern[str]:
    return re.compile(
        rf"(?=.*[A-Za-z])[A-Za-z0-9 {re.escape(punctuation)}]{{1,{ALPHANUMERIC_MAX}}}"
    )


def _neither(value: str, punctuation: str) -> str:
    allowed = (
        f"letters, digits, spaces and {punctuation}"
        if punctuation
        else "letters, digits and spaces"
    )
    return (
        f"{value!r} is neither a number in E.164 (+15017122661), a short code (3 to 8 digits), "
        f"nor an alphanumeric sender id (up to {ALPHANUMERIC_MAX} {allowed}, one letter at least)"
    )
