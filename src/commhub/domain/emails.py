"""E-mail addresses: validation and the one normal form used for lookup."""

from __future__ import annotations

import re
from typing import Final

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

MAX_ADDRESS_LENGTH: Final = 254
"""RFC 5321 §4.5.3.1.3: a path is at most 256 octets, two of them the angle brackets."""

_PLAIN: Final = re.compile(
    r"[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*"  # dot-atom local part, common characters
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"  # LDH labels (RFC 1035 §2.3.1)
    r"[A-Za-z]{2,63}"  # an alphabetic top-level domain
)
_SPECIAL_SUFFIXES: Final = tuple(f".{name}" for name in SPECIAL_USE_DOMAIN_NAMES)


class EmailError(ValueError):
    """The text is not a usable e-mail address; the message says why."""


def normalize_email(text: str) -> str:
    """Validate an address; return its lookup form (``Ivan@Example.COM`` → ``ivan@example.com``).

    The local part is case-folded too: RFC 5321 §2.4 allows case-sensitive
    mailboxes, but no mail system a sales team meets uses them, and a customer
    who writes ``Ivan@`` once and ``ivan@`` later is one person.
    """
    raw = text.strip()
    if not raw:
        raise EmailError("empty e-mail address")
    if _is_plain(raw):
        return raw.lower()
    try:
        valid = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise EmailError(f"{raw!r} is not a valid e-mail address: {exc}") from None
    return valid.normalized.lower()


def _is_plain(address: str) -> bool:
    """An ASCII address so ordinary that ``validate_email`` would accept it unchanged but for case.

    A spreadsheet of a million rows spends most of its e-mail time in the
    validator; this conservative test (no quoting, no IDNA, no special-use
    domains) skips it for the common case and leaves everything else to it.
    """
    if len(address) > MAX_ADDRESS_LENGTH or not _PLAIN.fullmatch(address):
        return False
    local, _, domain = address.partition("@")
    domain = domain.lower()
    return (
        len(local) <= 64
        and "--" not in domain
        and not any(domain.endswith(suffix) for suffix in _SPECIAL_SUFFIXES)
    )


def looks_like_email(text: str) -> bool:
    """Cheap test used to route an ``identify`` query to e-mail or phone lookup."""
    return "@" in text
