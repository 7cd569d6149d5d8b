"""The stock message templates shipped with the hub: found, listed, read and checked.

They live in the repository's top-level ``templates/`` folder, one folder per
template and language (``templates/README.md`` explains why)::

    templates/email/<key>/<language>/name.txt, subject.txt, body.txt, body.html
    templates/sms/<key>/<language>/name.txt, body.txt

The wheel carries the folder inside the package as ``commhub/stock_templates``
(hatchling's force-include, see pyproject.toml); an editable checkout reads
the repository's folder itself, so an edit there shows at once. Every
template read is compiled, so a broken stock file is reported with its path
and line instead of reaching a marketer's editor.

Reading is a few dozen small files, done when the console offers the stock
templates or copies one; an async caller runs it in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Final

from commhub.domain.template_render import RenderError, check_source

CHANNELS: Final = ("email", "sms")
_PACKAGED: Final = "stock_templates"


class StockTemplateError(Exception):
    """A stock template is missing a file or does not compile; the message names the file."""


@dataclass(frozen=True, slots=True)
class StockTemplate:
    """One stock template in one language, as text ready to copy into a user's template."""

    channel: str
    key: str
    """Stable across languages and releases: what ``message_templates.stock_key`` records."""
    language: str
    name: str
    subject: str | None
    text: str
    html: str | None
    folder: Path


def stock_templates_folder() -> Path:
    """The installed package's copy when there is one, else the checkout's ``templates/``."""
    packaged = files("commhub") / _PACKAGED
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[3] / "templates"
    if checkout.is_dir():
        return checkout
    raise StockTemplateError(
        f"no stock templates: neither {packaged} nor {checkout} is a folder; "
        "reinstall commhub, or run it from a checkout that has templates/"
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StockTemplateError(f"{path} is missing") from None
    except UnicodeDecodeError as error:
        raise StockTemplateError(f"{path} is not UTF-8 text ({error.reason})") from None


def _optional(path: Path) -> str | None:
    return _read(path) if path.exists() else None


def _load(channel: str, folder: Path) -> StockTemplate:
    name = _read(folder / "name.txt").strip()
    text = _read(folder / "body.txt")
    if channel == "sms":
        subject = html = None
        _check(folder / "body.txt", text)
    else:
        subject = _read(folder / "subject.txt")
        html = _optional(folder / "body.html")
        _check(folder / "subject.txt", subject)
        _check(folder / "body.txt", text)
        if html is not None:
            _check(folder / "body.html", html, html=True)
    return StockTemplate(
        channel=channel,
        key=folder.parent.name,
        language=folder.name,
        name=name,
        subject=subject,
        text=text,
        html=html,
        folder=folder,
    )


def _check(path: Path, source: str, *, html: bool = False) -> None:
    try:
        check_source(source, html=html)
    except RenderError as error:
        raise StockTemplateError(f"{path}: {error}") from None


def list_stock_templates(root: Path | None = None) -> list[StockTemplate]:
    """Every stock template in every language, by channel, key and language."""
    base = root or stock_templates_folder()
    found = []
    for channel in CHANNELS:
        channel_folder = base / channel
        if not channel_folder.is_dir():
            continue
        for key_folder in sorted(p for p in channel_folder.iterdir() if p.is_dir()):
            for language_folder in sorted(p for p in key_folder.iterdir() if p.is_dir()):
                found.append(_load(channel, language_folder))
    return found


def read_stock_template(
    channel: str, key: str, language: str, root: Path | None = None
) -> StockTemplate:
    """One stock template; :class:`StockTemplateError` naming what is unknown."""
    if channel not in CHANNELS:
        raise StockTemplateError(f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
    folder = (root or stock_templates_folder()) / channel / key / language
    if not key or "/" in key or key.startswith(".") or not folder.is_dir():
        raise StockTemplateError(f"there is no stock {channel} template {key!r} in {language!r}")
    return _load(channel, folder)
