"""Opt-out and opt-in keywords in an SMS reply (STOP, СТОП, START…).

Carriers and Twilio treat a message whose whole text is one of these words
as the subscriber's instruction, whatever its case or the spaces and
punctuation around it; a sentence that merely contains "stop" is not one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

STOP_WORDS: Final = (
    "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "СТОП", "ОТПИСАТЬСЯ",
)  # fmt: skip
START_WORDS: Final = ("START", "UNSTOP")
_AROUND: Final = re.compile(r"^[\s\W_]+|[\s\W_]+$")


class Instruction(StrEnum):
    STOP = "stop"
    START = "start"


def _word(text: str) -> str:
    return _AROUND.sub("", " ".join(text.split())).casefold()


@dataclass(frozen=True, slots=True)
class Keywords:
    """The words that opt a number out and back in; configurable per hub."""

    stop: frozenset[str]
    start: frozenset[str]

    @classmethod
    def of(cls, stop: Iterable[str] = STOP_WORDS, start: Iterable[str] = START_WORDS) -> Keywords:
        stops = frozenset(_word(w) for w in stop if _word(w))
        starts = frozenset(_word(w) for w in start if _word(w))
        if stops & starts:
            raise ValueError(f"words both stop and start: {', '.join(sorted(stops & starts))}")
        return cls(stops, starts)

    def instruction(self, text: str) -> Instruction | None:
        """What the whole message tells us, or ``None`` for an ordinary message."""
        word = _word(text)
        if word in self.stop:
            return Instruction.STOP
        if word in self.start:
            return Instruction.START
        return None
