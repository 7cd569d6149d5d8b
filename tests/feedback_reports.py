"""Feedback-loop reports as mailbox providers send them (RFC 5965, the Abuse Reporting Format).

Each report is bytes as it arrives in a mailbox: a ``multipart/report;
report-type=feedback-report`` with the human-readable part, the
``message/feedback-report`` fields, and the original message whole
(``message/rfc822``) or its header alone (``text/rfc822-headers``).
"""

from __future__ import annotations

from typing import Literal

Attached = Literal["message", "headers", "none"]


def original(message_id: str, *, sender: str, recipient: str, subject: str = "News") -> str:
    """The message we sent, as the provider quotes it (CRLF line ends)."""
    return (
        f"Return-Path: <{sender}>\r\n"
        "Received: from mail.example.com (mail.example.com [192.0.2.10])\r\n"
        "\tby mx.isp.example with ESMTPS id 4f2a; Tue, 01 Dec 2026 09:59:58 +0000\r\n"
        f"From: Example News <{sender}>\r\n"
        f"To: {recipient}\r\n"
        f"Subject: {subject}\r\n"
        "Date: Tue, 01 Dec 2026 09:59:57 +0000\r\n"
        f"Message-ID: <{message_id}>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Hello! Our December offers are here.\r\n"
    )


def feedback_report(
    message_id: str,
    *,
    sender: str,
    recipient: str,
    feedback_type: str = "abuse",
    attached: Attached = "message",
    rcpt_to: bool = True,
    report_id: str = "fbl-1@fbl.isp.example",
    to: str = "news@example.com",
) -> bytes:
    """An ARF report on ``message_id`` (ours, sent by ``sender`` to ``recipient``).

    ``rcpt_to=False`` leaves out ``Original-Rcpt-To``, as providers that
    redact the recipient do (RFC 6590).
    """
    boundary = "=_arf_7c2e"
    fields = [
        f"Feedback-Type: {feedback_type}",
        "User-Agent: ISP-FBL/2.1",
        "Version: 1",
        f"Original-Mail-From: <{sender}>",
        *([f"Original-Rcpt-To: <{recipient}>"] if rcpt_to else []),
        "Arrival-Date: Tue, 01 Dec 2026 09:59:58 +0000",
        "Reporting-MTA: dns; fbl.isp.example",
        "Source-IP: 192.0.2.10",
        "Reported-Domain: example.com",
    ]
    parts = [
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n"
        "This is an e-mail abuse report for a message received from IP 192.0.2.10\r\n"
        "on Tue, 01 Dec 2026 09:59:58 +0000. A user of ours marked it as spam.\r\n",
        "Content-Type: message/feedback-report\r\n\r\n" + "\r\n".join(fields) + "\r\n",
    ]
    quoted = original(message_id, sender=sender, recipient=recipient)
    if attached == "message":
        parts.append("Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n" + quoted)
    elif attached == "headers":
        header = quoted.split("\r\n\r\n", 1)[0] + "\r\n"
        parts.append("Content-Type: text/rfc822-headers\r\n\r\n" + header)
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    return (
        "From: ISP Feedback Loop <fbl@fbl.isp.example>\r\n"
        f"To: {to}\r\n"
        "Subject: Abuse report\r\n"
        "Date: Tue, 01 Dec 2026 10:30:00 +0000\r\n"
        f"Message-ID: <{report_id}>\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n'
        "\r\n"
        "This is a multi-part message in MIME format.\r\n"
        "\r\n" + body
    ).encode()
