"""One IMAP connection with types: aioimaplib's commands, their answers parsed, its errors ours.

aioimaplib has no type hints, raises its own exceptions, and never fails a
command in flight when the socket dies: it only calls ``conn_lost_cb``. So
every command here races the end of the connection and a timeout, and a
connection killed mid-command or mid-IDLE surfaces at once as
:class:`~commhub.channels.ChannelUnavailable` instead of a task that waits
for ever. Nothing of aioimaplib gets past this module.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import aioimaplib

from commhub.channels import ChannelError, ChannelUnavailable
from commhub_email.config import ImapSettings
from commhub_email.imap_syntax import mailbox, message_set, parse_fetch, quoted, search_uids

_FAILURES: Final = (aioimaplib.AioImapException, OSError, TimeoutError, ValueError, EOFError)


class _HideLogin(logging.Filter):
    """Keep LOGIN's line out of aioimaplib's debug log.

    aioimaplib masks the password as typed, but sends it quoted: one holding
    a quote or a backslash would reach the log escaped, and unmasked.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and " LOGIN " in record.msg:
            record.msg, record.args = "Sending : LOGIN (hidden)", None
        return True


_HIDE_LOGIN: Final = _HideLogin()


class LoginRefused(ChannelUnavailable):
    """The server refused the user name or password; worth retrying, an admin may fix it."""


class CommandRefused(ChannelError):
    """The server answered NO or BAD to a command; the message names the command."""


@dataclass(frozen=True, slots=True)
class Answer:
    """aioimaplib's response, typed: the tagged result and the lines before it."""

    result: str
    lines: Sequence[bytes]

    @property
    def text(self) -> str:
        return self.lines[-1].decode("utf-8", "replace") if self.lines else ""


@dataclass(frozen=True, slots=True)
class Selected:
    uidvalidity: int
    uidnext: int | None


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a message is before we read it: its size decides whether it is read whole."""

    uid: int
    size: int
    received_at: datetime | None


class ImapClient:
    """A logged-in connection: :meth:`connect`, then :meth:`logout` or :meth:`close`."""

    def __init__(self, client: Any, timeout: float) -> None:
        self._client = client
        self._timeout = timeout
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        client.protocol.conn_lost_cb = self._lost  # IMAP4_SSL's constructor does not take it
        self._idle: asyncio.Future[Any] | None = None

    @classmethod
    async def connect(cls, settings: ImapSettings, context: ssl.SSLContext | None) -> ImapClient:
        """Connect, log in and read the capabilities the server gives a logged-in user."""
        try:
            if settings.security == "tls":
                raw = aioimaplib.IMAP4_SSL(
                    settings.host,
                    settings.effective_port,
                    timeout=settings.timeout_s,
                    ssl_context=context,
                )
            else:
                raw = aioimaplib.IMAP4(
                    settings.host, settings.effective_port, timeout=settings.timeout_s
                )
        except _FAILURES as exc:
            raise ChannelUnavailable(f"connect to {settings.host}: {_reason(exc)}") from None
        client = cls(raw, settings.timeout_s)
        logging.getLogger(aioimaplib.__name__ + ".aioimaplib").addFilter(_HIDE_LOGIN)
        try:
            await client._call(raw.wait_hello_from_server(), "greeting")
            answer = await client._call(
                raw.login(quoted(settings.username), settings.password.get_secret_value()),
                "LOGIN",
            )
            if answer.result != "OK":
                raise LoginRefused(f"login as {settings.username!r} refused: {answer.text}")
            # LOGIN's OK may carry a partial list; ask for the one that now applies.
            await client._call(raw.protocol.capability(), "CAPABILITY")
        except BaseException:
            client.close()
            raise
        return client

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(str(c).upper() for c in self._client.protocol.capabilities)

    async def select(self, folder: str) -> Selected:
        answer = await self._ok(self._client.select(mailbox(folder)), f"SELECT {folder!r}")
        text = b"\n".join(answer.lines)
        validity = re.search(rb"\[UIDVALIDITY (\d+)\]", text)
        if validity is None:
            raise ChannelUnavailable(f"SELECT {folder!r}: the server sent no UIDVALIDITY")
        uidnext = re.search(rb"\[UIDNEXT (\d+)\]", text)
        return Selected(int(validity.group(1)), int(uidnext.group(1)) if uidnext else None)

    async def ensure_folder(self, folder: str) -> None:
        """Create ``folder`` unless it exists (where processed mail is moved to)."""
        listed = await self._ok(self._client.list('""', mailbox(folder)), f"LIST {folder!r}")
        if any(line.strip() for line in listed.lines[:-1]):
            return
        created = await self._call(self._client.create(mailbox(folder)), f"CREATE {folder!r}")
        if created.result != "OK" and "ALREADYEXISTS" not in created.text.upper():
            raise CommandRefused(f"CREATE {folder!r}: {created.result} {created.text}")

    async def uids_from(self, first: int) -> list[int]:
        """UIDs from ``first`` on, ascending.

        ``first:*`` always matches the folder's last message, even when its UID
        is below ``first`` (RFC 3501 §6.4.8), so the answer is filtered.
        """
        answer = await self._ok(
            self._client.protocol.search("UID", f"{first}:*", charset=None, by_uid=True),
            "UID SEARCH",
        )
        return [uid for uid in search_uids(answer.lines) if uid >= first]

    async def envelopes(self, uids: Sequence[int]) -> list[Envelope]:
        """Size and arrival time of each message still there, by UID."""
        answer = await self._fetch(uids, "(UID RFC822.SIZE INTERNALDATE)")
        found = [
            Envelope(item.uid, item.size, item.received_at)
            for item in parse_fetch(answer.lines)
            if item.size is not None
        ]
        return sorted(found, key=lambda envelope: envelope.uid)

    async def bodies(self, uids: Sequence[int], *, header_only: bool) -> dict[int, bytes]:
        """Each message's bytes (or its header) by UID; PEEK, so reading does not set \\Seen."""
        if not uids:
            return {}
        part = "BODY.PEEK[HEADER]" if header_only else "BODY.PEEK[]"
        answer = await self._fetch(uids, f"(UID {part})")
        return {item.uid: item.body for item in parse_fetch(answer.lines) if item.body is not None}

    async def add_flags(self, uids: Sequence[int], flags: str) -> None:
        await self._ok(
            self._client.uid("store", message_set(uids), "+FLAGS.SILENT", f"({flags})"),
            f"UID STORE +FLAGS ({flags})",
        )

    async def move(self, uids: Sequence[int], folder: str) -> None:
        """UID MOVE (RFC 6851); without it COPY, \\Deleted and UID EXPUNGE (RFC 4315).

        A server with neither MOVE nor UIDPLUS keeps the originals flagged
        \\Deleted: a plain EXPUNGE would also remove what others marked.
        """
        where, target = message_set(uids), mailbox(folder)
        if "MOVE" in self.capabilities:
            await self._ok(self._client.uid("move", where, target), f"UID MOVE to {folder!r}")
            return
        await self._ok(self._client.uid("copy", where, target), f"UID COPY to {folder!r}")
        await self.add_flags(uids, "\\Deleted")
        if "UIDPLUS" in self.capabilities:
            await self._ok(self._client.uid("expunge", where), "UID EXPUNGE")

    async def noop(self) -> None:
        await self._ok(self._client.noop(), "NOOP")

    async def pause(self, seconds: float) -> None:
        """Sleep, but wake with ChannelUnavailable the moment the connection drops."""
        await asyncio.wait({self.closed}, timeout=seconds)
        if self.closed.done():
            raise ChannelUnavailable("the server closed the connection")

    async def idle(self, renew_s: float) -> bool:
        """IDLE (RFC 2177) until new mail (True) or ``renew_s`` passes (False), then DONE."""
        loop = asyncio.get_running_loop()
        # aioimaplib's own renew timer is left out of the way; DONE cancels it.
        self._idle = await self._call(self._client.idle_start(timeout=renew_s + 3600), "IDLE")
        deadline = loop.time() + renew_s
        news = False
        try:
            while not news and (left := deadline - loop.time()) > 0:
                pushed = await self._push(left)
                if pushed is None or pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                for line in pushed:
                    if line.startswith(b"BYE"):
                        raise ChannelUnavailable(f"server said {line.decode(errors='replace')}")
                    news = news or line.endswith((b" EXISTS", b" RECENT"))
            self._client.idle_done()
            await self._call(self._idle, "DONE")
        finally:
            self._stop_idle()
        queue = self._client.protocol.idle_queue
        while not queue.empty():  # seen by the search that follows
            queue.get_nowait()
        return news

    async def logout(self, timeout: float) -> None:
        """Say goodbye if the server still listens; the connection is closed either way."""
        try:
            if not self.closed.done():
                if self._client.has_pending_idle():
                    self._client.idle_done()  # LOGOUT waits behind an IDLE not ended
                await asyncio.wait_for(self._call(self._client.logout(), "LOGOUT"), timeout)
        except (ChannelError, TimeoutError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        self._stop_idle()
        for task in [*self._client.tasks, *self._client.protocol.tasks]:
            task.cancel()
        transport = self._client.protocol.transport
        if transport is not None:
            transport.close()

    # -- plumbing ----------------------------------------------------------------------

    def _lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def _stop_idle(self) -> None:
        if self._idle is not None and not self._idle.done():
            self._idle.cancel()
        self._idle = None

    async def _push(self, timeout: float) -> list[bytes] | None:
        """What the server pushed during IDLE, or None once ``timeout`` passes quietly."""
        getting = asyncio.ensure_future(self._client.wait_server_push(timeout=timeout + 1))
        try:
            await asyncio.wait(
                {getting, self.closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if getting.done():
                return list(getting.result())
            if self.closed.done():
                raise ChannelUnavailable("the connection dropped while idling")
            return None
        except _FAILURES as exc:
            raise ChannelUnavailable(f"IDLE: {_reason(exc)}") from None
        finally:
            getting.cancel()

    async def _fetch(self, uids: Sequence[int], parts: str) -> Answer:
        # No overall timeout: aioimaplib times a FETCH out only when data stops coming.
        return await self._ok(
            self._client.uid("fetch", message_set(uids), parts), "UID FETCH", unlimited=True
        )

    async def _ok(self, command: Awaitable[Any], what: str, *, unlimited: bool = False) -> Answer:
        answer: Answer = await self._call(command, what, unlimited=unlimited)
        if answer.result != "OK":
            raise CommandRefused(f"{what}: {answer.result} {answer.text}")
        return answer

    async def _call(self, command: Awaitable[Any], what: str, *, unlimited: bool = False) -> Any:
        """Run one command against the end of the connection and a timeout; translate errors.

        aioimaplib's responses come back as :class:`Answer`, anything else as it is.
        """
        limit = None if unlimited else self._timeout
        task = asyncio.ensure_future(command)
        try:
            await asyncio.wait(
                {task, self.closed}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
            )
            if not task.done():
                if self.closed.done():
                    raise ChannelUnavailable(f"the connection dropped during {what}")
                raise ChannelUnavailable(f"no answer to {what} within {self._timeout:g} s")
            result = task.result()
        except aioimaplib.CommandTimeout:
            # Its text is the command line itself: for LOGIN, the password.
            raise ChannelUnavailable(f"no answer to {what} within {self._timeout:g} s") from None
        except _FAILURES as exc:
            raise ChannelUnavailable(f"{what}: {_reason(exc)}") from None
        finally:
            if not task.done():
                task.cancel()
        if isinstance(result, tuple) and len(result) == 2:  # aioimaplib's Response
            return Answer(str(result[0]), [bytes(line) for line in result[1]])
        return result


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
