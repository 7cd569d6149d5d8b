"""Keyset cursors: opaque strings that point after the last row a client saw."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime


class CursorError(ValueError):
    """A cursor that this server did not hand out."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position (time, id) of the last row of a page ordered newest first."""

    occurred_at: datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.occurred_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            when, _, ident = raw.partition("|")
            moment = datetime.fromisoformat(when)
            if moment.tzinfo is None:
                raise ValueError("naive time")
            return cls(occurred_at=moment, id=int(ident))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise CursorError(f"invalid cursor {text!r}") from None
