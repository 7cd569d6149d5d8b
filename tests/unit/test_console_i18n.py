"""The console's languages: every string it shows is in the Russian catalog, placeholders kept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir, extract_python
from babel.messages.pofile import read_po

from commhub.web.ui.i18n import negotiate, translations

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "src" / "commhub" / "web" / "ui"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _extracted() -> set[str]:
    keywords = {**DEFAULT_KEYWORDS, "N_": None, "redirect": (2,)}
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(UI),
        method_map=[("**.py", "python"), ("templates/**.html", "jinja2")],
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords=keywords,
    ):
        for text in message if isinstance(message, tuple) else (message,):
            if text:
                found.add(text)
    # Shipped names below the web layer, shown translated (babel.cfg lists the same file).
    with (ROOT / "src" / "commhub" / "domain" / "deals.py").open("rb") as source:
        for _line, _function, message, _comments in extract_python(source, ["N_"], [], {}):
            found.add(str(message))
    return found


def test_every_console_string_has_a_russian_translation() -> None:
    with (UI / "locales" / "ru" / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source)
    translated: dict[str, tuple[tuple[str, ...], bool]] = {}
    broken = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        texts = message.string if isinstance(message.string, tuple) else (message.string,)
        for msgid in ids:
            translated[msgid] = (tuple(texts), message.fuzzy)
        # Every placeholder of the English text, and no other, in every Russian form.
        wanted = set().union(*(PLACEHOLDER.findall(msgid) for msgid in ids))
        if any(text and set(PLACEHOLDER.findall(text)) != wanted for text in texts):
            broken.append(ids[0])
    extracted = _extracted()
    missing = sorted(m for m in extracted if m not in translated or not all(translated[m][0]))
    fuzzy = sorted(m for m in extracted if m in translated and translated[m][1])
    assert not missing, f"not translated (docs/console.md says how): {missing}"
    assert not fuzzy, f"fuzzy translations: {fuzzy}"
    assert not broken, f"placeholders differ: {broken}"


def test_russian_is_really_loaded() -> None:
    assert translations("ru").gettext("Log in") != "Log in"
    assert translations("en").gettext("Log in") == "Log in"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
        ("en-GB,en;q=0.9,ru;q=0.8", "en"),
        ("de-DE,de;q=0.9,ru;q=0.5", "ru"),
        ("fr", "en"),
        ("", "en"),
        ("ru;q=0, en;q=0.1", "en"),
        ("*;q=0.5, ru;q=0.9", "ru"),
        (";;;q=x,,,", "en"),
    ],
)
def test_language_follows_the_browser(header: str, language: str) -> None:
    assert negotiate(header) == language
