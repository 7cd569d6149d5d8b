"""Campaign e-mails written directly read back, through the standard library, as written."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage

import pytest

from commhub.domain.campaign_mail import Letterhead, letter
from commhub.domain.email_compose import DraftError

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
HEAD = Letterhead.of("news@example.com", "Новости «Ромашки»")


def read(raw: bytes) -> EmailMessage:
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert not message.defects
    return message


@pytest.mark.parametrize(
    ("subject", "name", "text", "html"),
    [
        ("Hello", "", "Plain text.\n", None),
        (
            "Скидка 10% для вас, Анна — только до пятницы! 🎉",
            "Анна Смирнова",
            "Привет,\nАнна!",
            "<p>Привет, <b>Анна</b></p>",
        ),
        (
            "A long ASCII subject " * 10,
            'Ivan "the Great", Jr.',
            "x" * 5000 + "\n" + "y " * 3000,
            "<p>" + "é" * 3000 + "</p>",
        ),
        (
            "=?utf-8?q?not_a_word?= and more",
            "=?utf-8?b?0JDQvdC90LA=?=",
            ". leading dot\n.\nFrom the start\n",
            None,
        ),
    ],
)
def test_a_letter_reads_back_as_written(
    subject: str, name: str, text: str, html: str | None
) -> None:
    made = letter(
        HEAD,
        to="Anna@Client.example",
        to_name=name,
        subject=subject,
        text=text,
        html=html,
        now=NOW,
        unsubscribe=(
            "https://hub.example/u/abc",
            "mailto:news@example.com?subject=unsubscribe%20abc",
        ),
    )
    message = read(made.raw)
    assert message["Subject"] == subject
    assert message["From"].addresses[0].display_name == "Новости «Ромашки»"
    assert message["From"].addresses[0].addr_spec == "news@example.com"
    to = message["To"].addresses[0]
    assert (to.display_name, to.addr_spec) == (name, "anna@client.example")
    assert message["Message-ID"] == f"<{made.message_id}>"
    assert message["List-Unsubscribe"] == (
        "<https://hub.example/u/abc>, <mailto:news@example.com?subject=unsubscribe%20abc>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain = message.get_body(("plain",))
    assert plain is not None
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == text.rstrip("\n")
    if html is None:
        assert message.get_content_type() == "text/plain"
    else:
        body = message.get_body(("html",))
        assert body is not None
        assert body.get_content().replace("\r\n", "\n").rstrip("\n") == html


@pytest.mark.parametrize("field", ["subject", "to_name"])
def test_a_line_break_cannot_add_a_header(field: str) -> None:
    values = {"subject": "Hi", "to_name": "Anna", field: "x\r\nBcc: everyone@example.com"}
    with pytest.raises(DraftError):
        letter(HEAD, to="anna@client.example", text="t", now=NOW, **values)


def test_a_bad_address_is_refused_with_its_field() -> None:
    with pytest.raises(DraftError) as failed:
        letter(HEAD, to="not an address", subject="Hi", text="t", now=NOW)
    assert failed.value.field == "to"
