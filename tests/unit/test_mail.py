"""Reading and writing e-mail: parsing odd real-world messages, bounces, auto-replies, composing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from commhub.domain.email_compose import (
    Attachment,
    Draft,
    DraftError,
    Recipient,
    compose,
    reply_subject,
)
from commhub.domain.email_messages import EmailParseError, attachment, parse_email, parse_message

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


def test_plain_message_with_encoded_headers_and_threading() -> None:
    parsed = parse_email(
        crlf(
            "From: =?utf-8?b?0JjQstCw0L0=?= <Ivan@Client.Example>\n"
            "To: sales@example.com, Other <other@example.com>\n"
            "Cc: boss@client.example\n"
            "Subject: =?utf-8?q?=D0=97=D0=B0=D0=BA=D0=B0=D0=B7?= 42\n"
            "Message-ID: <m2@client.example>\n"
            "In-Reply-To: <m1@example.com>\n"
            "References: <m0@example.com>\n <m1@example.com>\n"
            "Date: Tue, 24 Nov 2026 15:00:00 +0300\n"
            "Content-Type: text/plain; charset=koi8-r\n"
            "Content-Transfer-Encoding: 8bit\n"
            "\n"
        )
        + "Добрый день".encode("koi8-r")
        + b"\r\n"
    )
    assert parsed.message_id == "m2@client.example"
    assert parsed.sender is not None
    assert (parsed.sender.address, parsed.sender.name) == ("ivan@client.example", "Иван")
    assert [a.address for a in parsed.to] == ["sales@example.com", "other@example.com"]
    assert [a.address for a in parsed.cc] == ["boss@client.example"]
    assert parsed.subject == "Заказ 42"
    assert parsed.date == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert parsed.text == "Добрый день\n"
    assert parsed.thread_ids == ("m1@example.com", "m0@example.com")
    assert not parsed.auto_reply and parsed.bounce is None


def test_html_only_message_is_converted_for_the_card_and_kept() -> None:
    parsed = parse_email(
        crlf(
            "From: a@b.example\nSubject: x\nContent-Type: text/html; charset=utf-8\n\n"
            "<html><body><p>Hello <b>there</b></p><script>alert(1)</script>"
            "<p>Second</p></body></html>\n"
        )
    )
    assert parsed.html is not None and "<script>" in parsed.html
    assert "Hello there" in parsed.text
    assert "Second" in parsed.text
    assert "alert" not in parsed.text


def test_attachments_are_listed_and_can_be_taken_back_out() -> None:
    composed = compose(
        Draft(
            sender=Recipient("sales@example.com"),
            to=(Recipient("ivan@client.example"),),
            subject="Files",
            text="see attached",
            attachments=(Attachment("price.xlsx", b"PK\x03\x04data"), Attachment("a.txt", b"hi")),
        ),
        now=NOW,
        max_bytes=10**6,
    )
    parsed = parse_email(composed.raw)
    assert [(a.filename, a.size) for a in parsed.attachments] == [
        ("price.xlsx", 8),
        ("a.txt", 2),
    ]
    found = attachment(parse_message(composed.raw), parsed.attachments[0].index)
    assert found is not None and found[1] == b"PK\x03\x04data"
    assert attachment(parse_message(composed.raw), 0) is None


@pytest.mark.parametrize(
    "raw",
    [b"", b"   \r\n", b"\x00\x01\x02binary garbage", b"no header here at all\r\n\r\nbody"],
)
def test_what_is_not_a_message_raises_a_clear_error(raw: bytes) -> None:
    with pytest.raises(EmailParseError):
        parse_email(raw)


def test_broken_mime_still_yields_the_message() -> None:
    parsed = parse_email(
        crlf(
            "From: a@b.example\nSubject: =?unknown-charset?q?x?=\nDate: not a date\n"
            'Content-Type: multipart/mixed; boundary="never-closed"\n\n'
            "--never-closed\nContent-Type: text/plain; charset=no-such-charset\n"
            "Content-Transfer-Encoding: base64\n\n@@@not base64@@@\n"
        )
    )
    assert parsed.sender is not None and parsed.sender.address == "a@b.example"
    assert parsed.date is None
    assert parsed.defects >= 0


def test_a_message_without_message_id_or_sender_is_still_read() -> None:
    parsed = parse_email(crlf("Subject: hello\n\nbody\n"))
    assert parsed.message_id == ""
    assert parsed.sender is None
    assert parsed.text == "body\n"


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "X-Autoreply: yes",
        "Precedence: auto_reply",
        "X-Auto-Response-Suppress: OOF",
    ],
)
def test_auto_replies_are_recognised(header: str) -> None:
    parsed = parse_email(crlf(f"From: a@b.example\n{header}\nSubject: Out of office\n\nAway\n"))
    assert parsed.auto_reply


def test_auto_submitted_no_is_a_person() -> None:
    parsed = parse_email(crlf("From: a@b.example\nAuto-Submitted: no\nSubject: hi\n\nhi\n"))
    assert not parsed.auto_reply


DSN = """\
From: MAILER-DAEMON@mx.example.com (Mail Delivery System)
To: sales@example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce1@mx.example.com>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; gone@client.example
Original-Recipient: rfc822;gone@client.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <gone@client.example>: Recipient address rejected

Final-Recipient: rfc822; slow@client.example
Action: delayed
Status: 4.4.1
Diagnostic-Code: smtp; 451 4.4.1 try later

--B
Content-Type: text/rfc822-headers

From: Sales <sales@example.com>
To: gone@client.example
Subject: Offer
Message-ID: <offer-1@example.com>

--B--
"""


def test_a_standard_delivery_report_names_the_message_and_the_failures() -> None:
    parsed = parse_email(crlf(DSN))
    bounce = parsed.bounce
    assert bounce is not None
    assert bounce.original_message_id == "offer-1@example.com"
    assert bounce.permanent
    gone, slow = bounce.recipients
    assert (gone.address, gone.permanent, gone.status) == ("gone@client.example", True, "5.1.1")
    assert "Recipient address rejected" in gone.reason
    assert (slow.address, slow.permanent) == ("slow@client.example", False)


def test_a_report_with_the_whole_original_message_attached() -> None:
    raw = DSN.replace("Content-Type: text/rfc822-headers", "Content-Type: message/rfc822").replace(
        "Message-ID: <offer-1@example.com>\n", "Message-ID: <offer-1@example.com>\n\nbody\n"
    )
    bounce = parse_email(crlf(raw)).bounce
    assert bounce is not None and bounce.original_message_id == "offer-1@example.com"


def test_a_free_form_bounce_from_a_mailer_daemon() -> None:
    raw = crlf(
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
        "To: sales@example.com\nSubject: Delivery Status Notification (Failure)\n"
        "Content-Type: text/plain\n\n"
        "This is an automatically generated Delivery Status Notification\n\n"
        "Delivery to the following recipient failed permanently:\n\n"
        "     gone@client.example\n\n"
        "Technical details of permanent failure:\n550 5.1.1 user unknown\n\n"
        "----- Original message -----\n\nMessage-ID: <offer-2@example.com>\nSubject: Offer\n"
    )
    bounce = parse_email(raw).bounce
    assert bounce is not None
    assert bounce.original_message_id == "offer-2@example.com"
    assert [r.address for r in bounce.recipients] == ["gone@client.example"]


def test_a_person_writing_about_a_failure_is_not_a_bounce() -> None:
    raw = crlf(
        "From: ivan@client.example\nSubject: delivery failed?\n\n"
        "Your message to gone@client.example failed permanently, 550 5.1.1\n"
    )
    assert parse_email(raw).bounce is None


def test_compose_builds_headers_from_validated_parts() -> None:
    composed = compose(
        Draft(
            sender=Recipient("Sales@Example.com", "Sales, Inc."),
            to=(Recipient("ivan@client.example", "Иван"),),
            cc=(Recipient("boss@client.example"),),
            subject="Offer",
            text="Hello",
            in_reply_to="m1@client.example",
            references=("m0@client.example", "m1@client.example"),
        ),
        now=NOW,
        max_bytes=10**6,
    )
    head = composed.raw.split(b"\r\n\r\n", 1)[0].decode()
    assert f"Message-ID: <{composed.message_id}>" in head
    assert composed.message_id.endswith("@example.com")
    assert 'From: "Sales, Inc." <sales@example.com>' in head
    assert "In-Reply-To: <m1@client.example>" in head
    assert "References: <m0@client.example> <m1@client.example>" in head
    assert composed.recipients == ("ivan@client.example", "boss@client.example")
    assert composed.sender == "sales@example.com"


SENDER = Recipient("s@example.com")
TO = (Recipient("a@b.example"),)


@pytest.mark.parametrize(
    ("draft", "field"),
    [
        (Draft(SENDER, TO, "x\r\nBcc: v@x.y", ""), "subject"),
        (Draft(SENDER, (Recipient("a@b.example", "n\nBcc: v@x.y"),), "x", ""), "to.name"),
        (Draft(SENDER, (Recipient("a@b.example\nBcc: v@x.y"),), "x", ""), "to"),
        (Draft(SENDER, (), "x", ""), "to"),
        (Draft(SENDER, TO, "x", "", in_reply_to="<a b>"), "in_reply_to"),
        (
            Draft(SENDER, TO, "x", "", attachments=(Attachment("../etc/passwd", b""),)),
            "attachments.filename",
        ),
    ],
)
def test_compose_refuses_header_injection_and_bad_input(draft: Draft, field: str) -> None:
    with pytest.raises(DraftError) as caught:
        compose(draft, now=NOW, max_bytes=10**6)
    assert caught.value.field == field


def test_compose_bounds_the_size() -> None:
    draft = Draft(
        Recipient("s@example.com"),
        (Recipient("a@b.example"),),
        "big",
        "x",
        attachments=(Attachment("big.bin", b"x" * 10_000),),
    )
    with pytest.raises(DraftError, match="limit"):
        compose(draft, now=NOW, max_bytes=5_000)


def test_long_reference_chains_keep_the_first_and_the_latest() -> None:
    references = tuple(f"m{n}@x.example" for n in range(40))
    composed = compose(
        Draft(
            Recipient("s@example.com"),
            (Recipient("a@b.example"),),
            "Re: x",
            "",
            in_reply_to="m40@x.example",
            references=references,
        ),
        now=NOW,
        max_bytes=10**6,
    )
    parsed = parse_email(composed.raw)
    assert len(parsed.references) == 20
    assert parsed.references[0] == "m0@x.example"
    assert parsed.references[-1] == "m40@x.example"


def test_reply_subject_does_not_stack() -> None:
    assert reply_subject("Offer") == "Re: Offer"
    assert reply_subject("Re: Offer") == "Re: Offer"
    assert reply_subject("RE: Offer") == "RE: Offer"
    assert reply_subject("") == "Re:"
