"""STOP/START keywords, and how a message's delivery state follows its parts'."""

from __future__ import annotations

import pytest

from commhub.channels import DeliveryState
from commhub.domain.opt_outs import Instruction, Keywords
from commhub.services.sms_filing import overall

KEYWORDS = Keywords.of()


@pytest.mark.parametrize(
    "text", ["STOP", "stop", " Stop! ", "STOPALL", "unsubscribe", "Cancel.", "end", "QUIT",
             "СТОП", "стоп", "Отписаться", "  отписаться!!! "],
)  # fmt: skip
def test_a_message_that_is_only_an_opt_out_word_is_a_stop(text: str) -> None:
    assert KEYWORDS.instruction(text) is Instruction.STOP


@pytest.mark.parametrize("text", ["START", "start", "Unstop."])
def test_start_and_unstop_opt_back_in(text: str) -> None:
    assert KEYWORDS.instruction(text) is Instruction.START


@pytest.mark.parametrize(
    "text", ["please stop calling me", "stop it now", "", "   ", "стопка", "STOP STOP", "starting"]
)
def test_a_sentence_that_merely_contains_a_word_is_an_ordinary_message(text: str) -> None:
    assert KEYWORDS.instruction(text) is None


def test_the_words_are_configurable() -> None:
    custom = Keywords.of(stop=["ХВАТИТ"], start=["ВЕРНУТЬ"])
    assert custom.instruction("хватит") is Instruction.STOP
    assert custom.instruction("STOP") is None
    assert custom.instruction("Вернуть") is Instruction.START


def test_a_word_cannot_both_stop_and_start() -> None:
    with pytest.raises(ValueError, match="both stop and start: stop"):
        Keywords.of(stop=["stop"], start=["Stop"])


D = DeliveryState


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([D.QUEUED], D.QUEUED),
        ([D.SENT, D.QUEUED], D.SENT),
        ([D.DELIVERED, D.SENT], D.SENT),
        ([D.DELIVERED, D.DELIVERED], D.DELIVERED),
        ([D.DELIVERED, D.UNDELIVERED], D.UNDELIVERED),
        ([D.UNDELIVERED, D.FAILED], D.FAILED),
    ],
)
def test_a_message_is_delivered_when_every_part_is_and_lost_when_any_is(
    parts: list[DeliveryState], expected: DeliveryState
) -> None:
    assert overall(parts) is expected
