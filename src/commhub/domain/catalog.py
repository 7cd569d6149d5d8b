"""Marking text for the console's message catalog.

Shipped names that live below the web layer (a preset stage name) are
English source text; ``N_`` marks them so that extraction finds them, and
the console translates them when it shows them, in each viewer's language.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark text for the catalog where it is translated later (when shown)."""
    return message
