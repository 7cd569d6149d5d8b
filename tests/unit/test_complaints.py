"""Feedback-loop reports (RFC 5965) read from the bytes a provider sends, and told from bounces."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage

import pytest

from commhub.domain.complaints import find_complaint
from commhub.domain.email_messages import parse_email
from feedback_reports import feedback_report

SENDER = "news@example.com"
RECIPIENT = "p0@client.example"


@pytest.mark.parametrize("attached", ["message", "headers"])
def test_an_abuse_report_names_the_original_and_the_recipient(attached: str) -> None:
    raw = feedback_report("c1@example.com", sender=SENDER, recipient=RECIPIENT, attached=attached)
    parsed = parse_email(raw)
    assert parsed.complaint is not None
    assert parsed.complaint.feedback_type == "abuse"
    assert parsed.complaint.original_message_id == "c1@example.com"
    assert parsed.complaint.recipient == RECIPIENT
    assert parsed.complaint.reporter == "ISP-FBL/2.1"
    assert parsed.bounce is None
    assert parsed.message_id == "fbl-1@fbl.isp.example"


def test_a_redacted_report_still_names_the_original() -> None:
    raw = feedback_report("c2@example.com", sender=SENDER, recipient=RECIPIENT, rcpt_to=False)
    complaint = parse_email(raw).complaint
    assert complaint is not None
    assert complaint.recipient == ""
    assert complaint.original_message_id == "c2@example.com"


def test_a_report_without_the_original_is_still_a_report() -> None:
    raw = feedback_report("c3@example.com", sender=SENDER, recipient=RECIPIENT, attached="none")
    complaint = parse_email(raw).complaint
    assert complaint is not None
    assert complaint.original_message_id == ""
    assert complaint.recipient == RECIPIENT


@pytest.mark.parametrize(
    ("feedback_type", "complains"),
    [
        ("abuse", True),
        ("fraud", True),
        ("virus", True),
        ("other", True),
        ("not-spam", False),
        ("auth-failure", False),
    ],
)
def test_which_feedback_types_are_complaints(feedback_type: str, complains: bool) -> None:
    raw = feedback_report(
        "c4@example.com", sender=SENDER, recipient=RECIPIENT, feedback_type=feedback_type
    )
    parsed = parse_email(raw)
    assert (parsed.complaint is not None) is complains
    assert parsed.bounce is None


def test_a_delivery_status_report_is_a_bounce_not_a_complaint() -> None:
    raw = (
        "From: MAILER-DAEMON@mx.client.example\r\nTo: news@example.com\r\n"
        "Subject: Undelivered\r\nMessage-ID: <dsn@mx.client.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.client.example\r\n\r\n"
        f"Final-Recipient: rfc822; {RECIPIENT}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "\r\n--b--\r\n"
    ).encode()
    parsed = parse_email(raw)
    assert parsed.complaint is None
    assert parsed.bounce is not None


def test_a_report_with_no_feedback_type_is_not_read_as_a_complaint() -> None:
    raw = feedback_report("c5@example.com", sender=SENDER, recipient=RECIPIENT)
    raw = raw.replace(b"Feedback-Type: abuse\r\n", b"")
    assert parse_email(raw).complaint is None


def test_a_not_spam_vote_or_an_auth_failure_report_is_no_complaint() -> None:
    def report(kind: str) -> EmailMessage:
        raw = (
            "From: fbl@provider.example\r\nTo: news@example.com\r\nSubject: report\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; "
            'boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nreport\r\n'
            f"--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: {kind}\r\n"
            "Version: 1\r\nOriginal-Rcpt-To: <anna@client.example>\r\n\r\n"
            "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            "Message-ID: <m-1@example.com>\r\n\r\n--b--\r\n"
        ).encode()
        message = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message

    found = find_complaint(report("abuse"))
    assert found is not None
    assert (found.original_message_id, found.recipient) == (
        "m-1@example.com",
        "anna@client.example",
    )
    assert find_complaint(report("not-spam")) is None
    assert find_complaint(report("auth-failure")) is None
