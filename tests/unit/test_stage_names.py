"""Stage and pipeline names: shipped ones in the reader's language, an admin's as typed."""

from __future__ import annotations

from dataclasses import dataclass

from commhub.domain.deals import PRESET_NAMES
from commhub.web.ui.i18n import translations
from commhub.web.ui.stage_names import pipeline_name, stage_name


@dataclass
class Named:
    name: str
    preset: str | None


RUSSIAN = {
    "sales": "Продажи",
    "new_lead": "Новый лид",
    "in_progress": "В работе",
    "proposal": "Предложение / счёт",
    "won": "Успешно (оплачено)",
    "lost": "Проиграно",
}


def test_every_preset_reads_in_russian_and_in_english() -> None:
    russian = translations("ru").gettext
    english = translations("en").gettext
    assert set(RUSSIAN) == set(PRESET_NAMES)
    for preset, name in RUSSIAN.items():
        assert stage_name(Named("", preset), russian) == name
        assert stage_name(Named("", preset), english) == PRESET_NAMES[preset]
    assert pipeline_name(Named("", "sales"), russian) == "Продажи"


def test_a_renamed_stage_reads_as_the_admin_typed_it() -> None:
    russian = translations("ru").gettext
    assert stage_name(Named("Offer sent", "proposal"), russian) == "Offer sent"
    assert stage_name(Named("Lost", None), russian) == "Lost"


def test_an_unknown_preset_shows_its_key_rather_than_nothing() -> None:
    assert stage_name(Named("", "retired_preset"), translations("ru").gettext) == "retired_preset"
