"""Watching one IMAP folder: every message in it reaches the core once, in UID order.

The core holds the folder's cursor (UIDVALIDITY and the last UID it stored),
so a watcher keeps no state of its own across connections: each time it
connects it asks the core where the folder stands and imports what lies
after, or the whole folder when UIDVALIDITY changed (the core recognises
what it already has by Message-ID). Messages go to the core in batches; the
watcher waits until the core has stored a batch before it marks or moves
those messages on the server, so nothing leaves the folder before it is on
a card. Then it waits for news with IDLE (RFC 2177), or by polling where the
server has no IDLE, and reconnects with backoff whenever the server goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from commhub.channels import (
    ChannelError,
    ChannelUnavailable,
    EmailArrived,
    EmailCursor,
    EmailCursors,
    EventSink,
)
from commhub_email.config import ImapSettings
from commhub_email.imap_client import CommandRefused, Envelope, ImapClient, LoginRefused

log = logging.getLogger(__name__)

RECONNECT_MIN_S: Final = 1.0
LOGOUT_TIMEOUT_S: Final = 2.0
KEEPALIVE_S: Final = 60.0
"""While the core is slow to store a batch, a NOOP this often keeps the session alive."""
CHUNK_BYTES: Final = 16 * 1024 * 1024
"""Message bodies fetched per request, and held unfiled at most, roughly."""


class _CoreStopped(Exception):
    """The core cancelled a message's ``settled``: it is shutting down, so the watcher stops."""


class FolderWatcher:
    """One folder of one mailbox: imports its mail, then IDLEs or polls for more."""

    def __init__(
        self,
        *,
        source: str,
        folder: str,
        settings: ImapSettings,
        max_message_bytes: int,
        cursors: EmailCursors,
    ) -> None:
        self._source = source
        self._folder = folder
        self._settings = settings
        self._max_bytes = max_message_bytes
        self._cursors = cursors
        self._sink: EventSink | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: ImapClient | None = None
        self._ssl: ssl.SSLContext | None = None
        self._unsettled: list[tuple[int, asyncio.Future[None]]] = []
        """Messages handed to the core, by UID, with the future it resolves once they are stored."""
        self._unprocessed: list[int] = []
        """Stored, but not yet marked or moved on the server (under ``_uidvalidity``)."""
        self._caught_up = False
        self._connects = 0
        self._uidvalidity: int | None = None
        self._last_uid = 0
        self.connected = False
        self.idle: bool | None = None
        self.connected_since: datetime | None = None
        self.last_event_at: datetime | None = None
        self.reconnects = 0
        self.error: str | None = None
        self.imported = 0

    async def start(self, sink: EventSink) -> None:
        self._sink = sink
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(
                self._run(), name=f"imap {self._source}/{self._folder}"
            )

    async def stop(self) -> None:
        """Stop watching; say LOGOUT if the server still listens, briefly."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._disconnect(polite=True)

    def status(self) -> dict[str, Any]:
        return {
            "folder": self._folder,
            "connected": self.connected,
            "idle": self.idle,
            "connected_since": self.connected_since,
            "last_event_at": self.last_event_at,
            "reconnects": self.reconnects,
            "error": self.error,
            "imported": self.imported,
            "uidvalidity": self._uidvalidity,
            "last_uid": self._last_uid,
        }

    # -- the connection's life ---------------------------------------------------------

    async def _run(self) -> None:
        """Connect, watch, and on any failure reconnect with jittered exponential backoff."""
        delay = RECONNECT_MIN_S
        while True:
            self._caught_up = False
            try:
                await self._session()
            except _CoreStopped:
                log.info("%s/%s: the hub is stopping; watcher ends", self._source, self._folder)
                await self._disconnect(polite=True)
                return
            except LoginRefused as exc:
                self._failed(str(exc))
            except ChannelError as exc:
                self._failed(f"{'connection lost' if self.connected else 'cannot connect'}: {exc}")
            except Exception as exc:  # a bug here must not end the watching for good
                log.exception("%s/%s: watcher failed", self._source, self._folder)
                self._failed(f"unexpected error: {type(exc).__name__}: {exc}")
            await self._disconnect(polite=False)
            if self._caught_up:  # a session that worked: the next failure starts afresh
                delay = RECONNECT_MIN_S
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._settings.reconnect_max_s)

    async def _session(self) -> None:
        """One connection: resume from the core's cursor, catch up, then wait for news."""
        settings = self._settings
        if settings.security == "tls" and self._ssl is None:
            self._ssl = await asyncio.to_thread(self._ssl_context)  # reads the CA files
        self._client = client = await ImapClient.connect(settings, self._ssl)
        kind, _, target = settings.processed.partition(":")
        if kind == "move":
            await client.ensure_folder(target)
        selected = await client.select(self._folder)
        self._resume(selected.uidvalidity, await self._cursor())
        self._connects += 1
        self.reconnects = self._connects - 1
        self.connected, self.error = True, None
        self.idle = "IDLE" in client.capabilities
        self.connected_since = datetime.now(UTC)
        log.info(
            "%s/%s: connected (%s), importing from UID %d",
            self._source,
            self._folder,
            "IDLE" if self.idle else f"polling every {settings.poll_s:g} s",
            self._last_uid + 1,
        )
        await self._process(client)
        if selected.uidnext is None or selected.uidnext > self._last_uid + 1:
            await self._catch_up(client)
        self._caught_up = True
        while True:
            if self.idle:
                if not await client.idle(settings.idle_renew_s):
                    log.debug("%s/%s: IDLE renewed", self._source, self._folder)
            else:
                await client.pause(settings.poll_s)
                await client.noop()
            await self._catch_up(client)

    async def _cursor(self) -> EmailCursor | None:
        try:
            return await self._cursors.cursor(self._source, self._folder)
        except Exception as exc:  # the hub's database is down: try again with the connection
            raise ChannelUnavailable(f"the hub cannot read where the folder stands: {exc}") from exc

    def _resume(self, uidvalidity: int, cursor: EmailCursor | None) -> None:
        """Start after the core's last UID; from the first message under a new UIDVALIDITY."""
        if self._unprocessed and self._uidvalidity != uidvalidity:
            self._unprocessed = []  # those UIDs name other messages now (RFC 3501 §2.3.1.1)
        self._uidvalidity = uidvalidity
        if cursor is not None and cursor.uidvalidity == uidvalidity:
            self._last_uid = cursor.last_uid
            return
        if cursor is not None:
            log.warning(
                "%s/%s: UIDVALIDITY changed %d -> %d; offering the whole folder again",
                self._source,
                self._folder,
                cursor.uidvalidity,
                uidvalidity,
            )
        self._last_uid = 0

    async def _disconnect(self, *, polite: bool) -> None:
        for uid, settled in self._unsettled:
            if settled.done() and not settled.cancelled():
                self._unprocessed.append(uid)  # stored: mark or move it after reconnecting
            else:
                settled.cancel()  # the core drops it; it is offered again from its cursor
        self._unsettled = []
        client, self._client = self._client, None
        self.connected, self.connected_since = False, None
        if client is None:
            return
        if not polite:
            client.close()
            return
        if self._unprocessed:  # stopped mid-batch: mark or move what is already stored
            with contextlib.suppress(ChannelError, TimeoutError):
                await asyncio.wait_for(self._process(client), LOGOUT_TIMEOUT_S)
        await client.logout(LOGOUT_TIMEOUT_S)

    def _failed(self, error: str) -> None:
        secret = self._settings.password.get_secret_value()
        self.error = error.replace(secret, "***") if secret else error
        log.warning("%s/%s: %s", self._source, self._folder, self.error)

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self._settings.ca_file)
        if not self._settings.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    # -- importing -----------------------------------------------------------------------

    async def _catch_up(self, client: ImapClient) -> None:
        """Import everything after the last UID, batch by batch, until nothing new is found."""
        while uids := await client.uids_from(self._last_uid + 1):
            for start in range(0, len(uids), self._settings.batch):
                batch = uids[start : start + self._settings.batch]
                await self._import(client, batch)
                self._last_uid = max(self._last_uid, batch[-1])

    async def _import(self, client: ImapClient, uids: Sequence[int]) -> None:
        """Hand one batch to the core, wait until it is stored, then act on it on the server."""
        in_hand = 0
        limit = self._max_bytes
        for chunk in _chunks(await client.envelopes(uids), max(CHUNK_BYTES, limit)):
            bodies = await client.bodies(
                [e.uid for e in chunk if e.size <= limit], header_only=False
            )
            bodies |= await client.bodies(
                [e.uid for e in chunk if e.size > limit], header_only=True
            )
            for envelope in chunk:
                raw = bodies.get(envelope.uid)
                if raw is not None:  # else expunged since the search
                    self._hand(envelope, raw, truncated=envelope.size > limit)
                    in_hand += len(raw)
            if in_hand > CHUNK_BYTES:
                await self._settled(client)
                in_hand = 0
        await self._settled(client)
        await self._process(client)

    def _hand(self, envelope: Envelope, raw: bytes, *, truncated: bool) -> None:
        assert self._sink is not None and self._uidvalidity is not None
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unsettled.append((envelope.uid, settled))
        self._sink(
            EmailArrived(
                source=self._source,
                folder=self._folder,
                uidvalidity=self._uidvalidity,
                uid=envelope.uid,
                raw=raw,
                settled=settled,
                size=envelope.size,
                truncated=truncated,
                received_at=envelope.received_at,
            )
        )
        self.imported += 1
        self.last_event_at = datetime.now(UTC)

    async def _settled(self, client: ImapClient) -> None:
        """Wait until the core has stored every message handed over; NOOP meanwhile."""
        waiting = {settled for _, settled in self._unsettled if not settled.done()}
        while waiting:
            _, waiting = await asyncio.wait(waiting, timeout=KEEPALIVE_S)
            if waiting:
                await client.noop()
        if any(settled.cancelled() for _, settled in self._unsettled):
            raise _CoreStopped
        self._unprocessed += [uid for uid, _ in self._unsettled]
        self._unsettled = []

    async def _process(self, client: ImapClient) -> None:
        """Apply ``processed`` to stored messages. A refusal is reported, not retried for ever."""
        uids, self._unprocessed = self._unprocessed, []
        kind, _, target = self._settings.processed.partition(":")
        if not uids or kind == "leave":
            return
        try:
            if kind == "seen":
                await client.add_flags(uids, "\\Seen")
            elif kind == "flag":
                await client.add_flags(uids, target)
            elif kind == "move":
                await client.move(uids, target)
        except CommandRefused as exc:
            self.error = f"processed {self._settings.processed!r}: {exc}"
            log.error("%s/%s: %s", self._source, self._folder, self.error)
        except BaseException:
            self._unprocessed = uids + self._unprocessed  # the connection failed: next time
            raise


def _chunks(envelopes: Sequence[Envelope], limit: int) -> list[list[Envelope]]:
    """Consecutive runs of messages whose bodies add up to about ``limit`` bytes each."""
    chunks: list[list[Envelope]] = []
    size = limit
    for envelope in envelopes:
        if size + envelope.size > limit and (not chunks or chunks[-1]):
            chunks.append([])
            size = 0
        chunks[-1].append(envelope)
        size += envelope.size
    return chunks
