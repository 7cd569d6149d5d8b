"""Feedback-loop reports (ARF, RFC 5965): which are complaints, about what, from whom."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage

from commhub.domain.complaints import find_complaint


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
