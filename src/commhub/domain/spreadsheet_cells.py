"""Text made safe to put in a spreadsheet cell that someone will open in Excel or Calc.

A cell whose text starts with ``=``, ``+``, ``-`` or ``@`` is read as a formula
when the file is opened, and a leading tab or carriage return can hide one
(OWASP "CSV Injection"). A summary typed by a customer in an e-mail must not
run as ``=HYPERLINK(…)`` on the manager's machine, so exports write such text
behind a single quote, which spreadsheets show as plain text.
"""

from __future__ import annotations

from typing import Final

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def neutralised(text: str) -> str:
    """``text`` as it is, or behind a ``'`` when a spreadsheet would take it for a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
