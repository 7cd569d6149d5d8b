"""Stock templates: each compiles and renders for the preview client, in a checkout and a wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from commhub.domain.sms_text import measure
from commhub.domain.template_render import compiled
from commhub.domain.virtual_client import virtual_client
from commhub.services.stock_templates import (
    StockTemplateError,
    list_stock_templates,
    read_stock_template,
    stock_templates_folder,
)

REPOSITORY = Path(__file__).resolve().parents[2]
KEYS = {"welcome", "call_follow_up", "invoice_reminder", "event_invitation"}
MARKETING = {"welcome", "event_invitation"}
STOCK = list_stock_templates()
UNSUBSCRIBE = "https://hub.example/u/preview"
OWN = {"event_name", "event_when", "event_where", "event_url", "email", "phone"}
"""What a copied template's author fills in (the event) or the hub does not hold yet (a user's
e-mail and phone): the stock texts guard or default them."""


def written(stock: Any, values: dict[str, Any]) -> tuple[str, str, set[str]]:
    """The template's subject (or ""), its text and HTML joined, and the variables missing."""
    parts = [("text", stock.text, False)]
    if stock.subject is not None:
        parts.append(("subject", stock.subject, False))
    if stock.html is not None:
        parts.append(("html", stock.html, True))
    shown = {name: compiled(source, html=html).render(values) for name, source, html in parts}
    missing = set().union(*(r.missing for r in shown.values()))
    body = shown["text"].text + (shown["html"].text if "html" in shown else "")
    subject = " ".join(shown["subject"].text.split()) if "subject" in shown else ""
    return subject, body, missing


def test_every_key_ships_as_email_and_sms_in_english_and_russian() -> None:
    found = {(t.channel, t.key, t.language) for t in STOCK}

    assert found == {(c, k, lang) for c in ("email", "sms") for k in KEYS for lang in ("en", "ru")}
    assert all(t.name for t in STOCK)


@pytest.mark.parametrize("stock", STOCK, ids=lambda t: f"{t.channel}-{t.key}-{t.language}")
def test_stock_template_renders_for_the_virtual_client(stock: Any) -> None:
    values = {**virtual_client(stock.language), "unsubscribe_url": UNSUBSCRIBE}
    subject, body, missing = written(stock, values)
    assert missing <= OWN, missing
    assert "{{" not in body and "{%" not in body
    if stock.channel == "sms":
        assert measure(body).segments <= 3
        return
    assert subject and "\n" not in subject
    assert stock.html is not None and "<!DOCTYPE html>" in body
    assert "<img" not in stock.html
    assert values["contact"]["first_name"] in body
    if stock.key in MARKETING:
        assert UNSUBSCRIBE in body


def test_fallbacks_keep_a_stock_template_readable_for_a_contact_with_nothing_filled() -> None:
    bare: dict[str, Any] = {"contact": {}, "company": {}, "owner": {}, "deal": {}}
    for stock in STOCK:
        subject, body, _ = written(stock, bare)
        assert "None" not in body and "None" not in subject, (stock.key, stock.language)
        if stock.channel == "email":
            assert subject.strip(), (stock.key, stock.language)


def test_an_editable_checkout_reads_the_repository_folder() -> None:
    assert stock_templates_folder() == REPOSITORY / "templates"


def test_unknown_stock_templates_are_named_in_the_error() -> None:
    assert read_stock_template("sms", "welcome", "ru").text.startswith("{{ contact.first_name")
    with pytest.raises(StockTemplateError, match="no stock email template 'welcome' in 'de'"):
        read_stock_template("email", "welcome", "de")
    with pytest.raises(StockTemplateError, match="unknown channel 'fax'"):
        read_stock_template("fax", "welcome", "en")
    with pytest.raises(StockTemplateError):
        read_stock_template("email", "../sms", "en")


def test_a_broken_stock_file_is_reported_with_its_path_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "sms" / "welcome" / "en"
    folder.mkdir(parents=True)
    (folder / "name.txt").write_text("Welcome\n")
    (folder / "body.txt").write_text("Hi\n{{ contact.name }\n")

    with pytest.raises(StockTemplateError, match=r"body.txt: line 2"):
        list_stock_templates(tmp_path)


def test_the_wheel_carries_the_templates_and_the_installed_package_finds_them(
    tmp_path: Path,
) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(REPOSITORY),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("commhub-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    assert "commhub/stock_templates/email/welcome/ru/body.html" in names
    assert "commhub/stock_templates/sms/event_invitation/en/body.txt" in names

    probe = (
        "from commhub.services import stock_templates as s\n"
        "print(s.stock_templates_folder()); print(len(s.list_stock_templates()))\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    run = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    folder, count = run.stdout.split()
    assert Path(folder) == tmp_path / "site" / "commhub" / "stock_templates"
    assert int(count) == len(STOCK)
