"""E-mail addresses: validation and the one normal form used for lookup."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


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
    try:
        valid = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise EmailError(f"{raw!r} is not a valid e-mail address: {exc}") from None
    return valid.normalized.lower()


def looks_like_email(text: str) -> bool:
    """Cheap test used to route an ``identify`` query to e-mail or phone lookup."""
    return "@" in text
