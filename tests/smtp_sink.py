"""A real SMTP server on loopback for the tests: aiosmtpd, recording what it is sent.

It runs in the test's own event loop (aiosmtpd's protocol on
``loop.create_server``), on a free port, optionally with STARTTLS, implicit
TLS and AUTH. Faults are injected here, in the peer, never by patching our
code: refuse a recipient (``refuse``), defer the next messages with a 451
(``defer``), answer 421 and close, or drop every open connection (``drop``).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class Received:
    peer: tuple[str, int]
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    """The message bytes as they arrived after the DATA command (dot-unstuffed)."""


@dataclass
class Recorder:
    """aiosmtpd handler: keeps every message, answers as the test set it up."""

    messages: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    defer: int = 0
    close_next: bool = False
    connections: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.close_next:
            self.close_next = False
            return "421 4.3.2 closing the connection, try again"
        if self.defer:
            self.defer -= 1
            return "451 4.3.0 temporary failure, try again later"
        content = envelope.original_content or b""
        self.messages.append(
            Received(
                peer=session.peer,
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=content,
            )
        )
        self.arrived.set()
        return f"250 2.0.0 Ok: queued as Q{len(self.messages)}"


class _CountingSMTP(SMTP):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        recorder: Recorder = self.event_handler
        recorder.connections += 1
        super().connection_made(transport)


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 and a free port."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        users: dict[str, str] | None = None,
    ) -> None:
        self.recorder = Recorder()
        self._tls = tls
        self._implicit = implicit_tls
        self._users = users
        self._server: asyncio.Server | None = None
        self._protocols: list[SMTP] = []
        self.port = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, "127.0.0.1", 0, ssl=self._tls if self._implicit else None
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def _protocol(self) -> SMTP:
        kwargs: dict[str, Any] = {"hostname": "sink.test", "enable_SMTPUTF8": True}
        if self._tls is not None and not self._implicit:
            kwargs.update(tls_context=self._tls, require_starttls=True)
        if self._users is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        protocol = _CountingSMTP(self.recorder, **kwargs)
        self._protocols.append(protocol)
        return protocol

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self._users is not None:
            user = data.login.decode()
            if self._users.get(user) == data.password.decode():
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def drop(self) -> None:
        """Close every open connection, as a server does to idle clients."""
        for protocol in self._protocols:
            transport = protocol.transport
            if transport is not None:
                transport.close()

    @property
    def messages(self) -> list[Received]:
        return self.recorder.messages

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        async def poll() -> None:
            while len(self.recorder.messages) < count:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(poll(), timeout)
        return self.recorder.messages

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
