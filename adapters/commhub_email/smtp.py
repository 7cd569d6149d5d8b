"""Sending through the mailbox's SMTP server on one connection, reused across messages.

Messages go one at a time over a single connection (aiosmtplib, so nothing
blocks the event loop): connecting, TLS and login happen once, not per
message. A connection left unused for a few seconds is checked with NOOP
before the next message, because servers drop idle clients; one unused for
``idle_close_s`` is closed. The server's refusals become the core's errors:
a 5xx answer is :class:`SendRejected` (do not retry), a 4xx or a broken
connection :class:`ChannelUnavailable` (a later try may work).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Final

import aiosmtplib

from commhub.channels import (
    ChannelUnavailable,
    HandOverUnknown,
    OutboundEmail,
    SendRejected,
    SendResult,
)
from commhub_email.config import SmtpSettings

log = logging.getLogger(__name__)

CHECK_AFTER_S: Final = 5.0
"""A connection unused this long gets a NOOP before the next message."""


class SmtpSender:
    """One SMTP server, one connection, one message at a time."""

    def __init__(self, *, mailbox: str, settings: SmtpSettings) -> None:
        self._mailbox = mailbox
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()
        self._last_used = 0.0
        self.connects = 0
        self.sent = 0
        self.last_sent_at: datetime | None = None
        self.error: str | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def send(self, message: OutboundEmail) -> SendResult:
        async with self._lock:
            client = await self._ready()
            try:
                refused = await self._envelope(client, message)
                reply = await self._data(client, message)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                raise self._refused(exc) from None
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code == 421:  # the server is closing this connection
                    await self._drop()
                raise self._answer(exc.code, exc.message) from None
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await self._drop()
                raise self._unavailable(f"sending failed: {exc}") from None
            self._last_used = time.monotonic()
        now = datetime.now(UTC)
        self.sent += 1
        self.last_sent_at = now
        self.error = None
        return SendResult(
            reply=f"250 {reply}",
            accepted_at=now,
            refused={address: f"{r.code} {r.message}" for address, r in refused.items()},
        )

    async def _envelope(
        self, client: aiosmtplib.SMTP, message: OutboundEmail
    ) -> dict[str, aiosmtplib.SMTPRecipientRefused]:
        """MAIL FROM and RCPT TO: a failure here means the server has nothing of the message."""
        await client.mail(message.sender)
        refused: dict[str, aiosmtplib.SMTPRecipientRefused] = {}
        for recipient in message.recipients:
            try:
                await client.rcpt(recipient)
            except aiosmtplib.SMTPRecipientRefused as exc:
                refused[recipient] = exc
        if len(refused) == len(message.recipients):
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.rset()
            raise aiosmtplib.SMTPRecipientsRefused(list(refused.values()))
        return refused

    async def _data(self, client: aiosmtplib.SMTP, message: OutboundEmail) -> str:
        """DATA: once the text is on its way, no answer is not a refusal: the server may have it."""
        try:
            response = await client.data(message.raw)
        except aiosmtplib.SMTPResponseException:
            raise
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self._drop()
            reason = f"no answer to the message's text ({exc or type(exc).__name__})"
            self.error = reason
            log.warning("mailbox %s: %s: the server may have it", self._mailbox, reason)
            raise HandOverUnknown(reason) from None
        return response.message

    async def close(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    client.close()

    async def _ready(self) -> aiosmtplib.SMTP:
        """The open connection, checked if it sat unused; a new one if it is gone."""
        client = self._client
        idle = time.monotonic() - self._last_used
        if client is not None and client.is_connected:
            if idle < CHECK_AFTER_S:
                return client
            if idle < self._settings.idle_close_s:
                try:
                    await client.noop()
                    return client
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    pass
            await self._drop()
        return await self._connect()

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.effective_port,
            username=settings.username or None,
            password=settings.password.get_secret_value() or None,
            timeout=settings.timeout_s,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            validate_certs=settings.verify_certificate,
            cert_bundle=settings.ca_file,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise self._unavailable(f"login refused: {exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            client.close()
            where = f"{settings.host}:{settings.effective_port}"
            raise self._unavailable(f"cannot connect to {where}: {exc}") from None
        self._client = client
        self._last_used = time.monotonic()
        self.connects += 1
        return client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _refused(self, exc: aiosmtplib.SMTPRecipientsRefused) -> Exception:
        """Every recipient was refused: permanent if any refusal was (RFC 5321 5yz)."""
        reasons = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        if any(r.code >= 500 for r in exc.recipients):
            return SendRejected(f"recipients refused: {reasons}")
        return self._unavailable(f"recipients deferred: {reasons}")

    def _answer(self, code: int, text: str) -> Exception:
        if code >= 500:
            return SendRejected(f"{code} {text}")
        return self._unavailable(f"server answered {code} {text}")

    def _unavailable(self, reason: str) -> ChannelUnavailable:
        self.error = reason
        log.warning("mailbox %s: %s", self._mailbox, reason)
        return ChannelUnavailable(reason)
