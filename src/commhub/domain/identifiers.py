"""Record ids as people and clients write them: ASCII decimal digits, within int64.

``str.isdigit`` accepts Arabic-Indic, Devanagari and other digits that
``int`` then reads, so ``/contacts/١`` would open contact 1; and the
databases store ids as 64-bit integers, so a longer number cannot name a row.
"""

from __future__ import annotations

from typing import Final

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


def parse_id(text: str) -> int | None:
    """The id ``text`` names, or ``None`` when it names none (not ASCII digits, or too big)."""
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if value <= INT64_MAX else None


def in_int64(value: int) -> bool:
    """Whether ``value`` fits the databases' 64-bit integer columns."""
    return INT64_MIN <= value <= INT64_MAX
