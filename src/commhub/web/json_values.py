"""Which JSON values the API takes in: how deep, how large an integer, which numbers.

Python's JSON reader accepts what the rest of the stack cannot: nesting deep
enough to exhaust the interpreter's recursion (a ``RecursionError`` in the
reader, the validator or the database driver), integers beyond the 64-bit
columns, and ``NaN``/``Infinity``, which are not JSON at all (RFC 8259 §6)
and which PostgreSQL's ``jsonb`` refuses, and the NUL character, which no
PostgreSQL text or ``jsonb`` value can hold. Each is refused here, once, for
every body and query, naming the field.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from commhub.domain.identifiers import in_int64

NUL: Final = "\x00"
NUL_MESSAGE: Final = "must not contain the NUL character (U+0000)"
MAX_DEPTH: Final = 32
"""Arrays and objects nested deeper than this are refused (no body of ours needs 5)."""


class JsonValueError(ValueError):
    """A value the API does not take; ``field`` is its dotted path (``extra.a.0``)."""

    def __init__(self, field: str, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes) -> Any:
    """``raw`` decoded, refusing ``NaN``/``Infinity`` and nesting deeper than :data:`MAX_DEPTH`.

    Raises ``ValueError`` (with ``json.JSONDecodeError`` and ``UnicodeDecodeError``
    among its kinds) or :class:`JsonValueError`.
    """
    try:
        data = json.loads(raw or b"null", parse_constant=_no_constant)
    except RecursionError:
        raise JsonValueError(
            "body", f"JSON nested deeper than {MAX_DEPTH} levels", status=400
        ) from None
    check_values(data, depth_status=400)
    return data


def check_values(value: Any, field: str = "", *, depth_status: int = 422) -> None:
    """Walk ``value`` (without recursion) and refuse what no column or reader takes."""
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                raise JsonValueError(path or "body", NUL_MESSAGE)
            continue
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, int):
            if not in_int64(item):
                raise JsonValueError(path or "body", "must be a 64-bit integer")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise JsonValueError(path or "body", "must be a finite number")
        elif isinstance(item, dict | list | tuple):
            if depth >= MAX_DEPTH:
                raise JsonValueError(
                    path or "body", f"nested deeper than {MAX_DEPTH} levels", status=depth_status
                )
            if isinstance(item, dict) and any(NUL in str(key) for key in item):
                raise JsonValueError(path or "body", f"names hold no NUL: {NUL_MESSAGE}")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                stack.append((child, f"{path}.{key}" if path else str(key), depth + 1))
