"""The console's languages: message catalogs, and which one a request gets.

Catalogs are gettext ``.po`` files under ``locales/`` (English is the source
language and needs none). They are compiled in memory when first used, so no
build step and no binary ``.mo`` file is needed. Extract and update them with
Babel (see docs/console.md).
"""

from __future__ import annotations

import functools
import io
from importlib import resources
from typing import Final

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from commhub.config import CONSOLE_LANGUAGES
from commhub.domain.catalog import N_ as N_

_NAMES: Final = {"en": "English", "ru": "Русский"}
LANGUAGES: Final = {code: _NAMES[code] for code in CONSOLE_LANGUAGES}
"""Each language the console speaks, by code, named in itself."""
DEFAULT_LANGUAGE: Final = "en"
DOMAIN: Final = "messages"


@functools.cache
def translations(language: str) -> NullTranslations:
    """The catalog for ``language``; English (the source text) for any other code."""
    if language == DEFAULT_LANGUAGE or language not in LANGUAGES:
        return NullTranslations()
    po = resources.files("commhub.web.ui").joinpath(
        "locales", language, "LC_MESSAGES", f"{DOMAIN}.po"
    )
    with po.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def negotiate(accept_language: str) -> str:
    """The best of our languages for an ``Accept-Language`` header, else English.

    ``ru-RU,ru;q=0.9,en;q=0.8`` → ``ru``; a malformed header counts as absent.
    """
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip()))
    for _, _, tag in sorted(ranked):
        if tag == "*":
            return DEFAULT_LANGUAGE
        try:
            language = Locale.parse(tag, sep="-").language
        except (ValueError, UnknownLocaleError):
            continue
        if language in LANGUAGES:
            return language
    return DEFAULT_LANGUAGE
