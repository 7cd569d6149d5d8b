"""Where the console may send a browser back to: a path on this hub, never another site.

Browsers are generous readers of a ``Location``: ``//host`` and ``/\\host``
name another host (the WHATWG URL standard treats ``\\`` as ``/`` in http(s)
URLs), tabs and newlines are dropped from anywhere in a URL (so ``/\\t/host``
is ``//host``), and ``javascript:`` or ``https:`` start a URL of their own.
Only a plain absolute path passes, checked as sent and with its
percent-escapes decoded, so ``/%5Chost`` or ``/%2F%2Fhost`` cannot turn into
one of those on a later hop.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote, unquote

HOME: Final = "/"
_DECODINGS: Final = 3
"""How many layers of percent-escapes are peeled off to look for a disguised host."""


def local_path(value: object, fallback: str = HOME) -> str:
    """``value`` if it is a path on this site, else ``fallback``.

    Non-ASCII characters come back percent-encoded, so the path is a valid
    ``Location`` header as it is.
    """
    if not isinstance(value, str):
        return fallback
    seen = value
    for _ in range(_DECODINGS + 1):
        if not _plain_path(seen):
            return fallback
        decoded = unquote(seen)
        if decoded == seen:
            break
        seen = decoded
    return "".join(ch if ch.isascii() else quote(ch) for ch in value)


def _plain_path(text: str) -> bool:
    if not text.startswith("/") or text.startswith("//"):
        return False
    return "\\" not in text and all(ch.isprintable() for ch in text)
