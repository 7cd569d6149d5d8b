"""The core's side of mailbox watching: files each message the adapters hand in, in order.

A mailbox adapter waits on each message's ``settled`` before it flags or
moves it on the server, so nothing here may drop a message silently: a
database outage is waited out (the message stays in hand and is retried),
anything else keeps the message raw as a failure with the reason. Either way
the message is settled and the one after it goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Final

from commhub.channels import MailArrived, MailCursor
from commhub.services import live
from commhub.services.mail_filing import Filed, FiledMail, Mailbox, file_mail, keep_unreadable
from commhub.store import emails as store
from commhub.store.engine import SessionFactory

log = logging.getLogger(__name__)

EMAIL_RECEIVED: Final = "email.received"
QUEUE: Final = 1_000
RETRY_MIN_S: Final = 0.5
RETRY_MAX_S: Final = 30.0


class StoredCursors:
    """:class:`~commhub.channels.MailCursors` read from the database: where each folder stands."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def cursor(self, source: str, folder: str) -> MailCursor | None:
        async with self._sessions() as session:
            row = await store.cursor(session, source, folder)
        return None if row is None else MailCursor(row.uidvalidity, row.last_uid)


class MailInbox:
    """Files :class:`MailArrived` events and answers the adapters' cursor questions."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        feed: live.LiveFeed,
        region: str,
        create_unknown: bool = False,
        mailboxes: Mapping[str, str] | None = None,
        transient: tuple[type[BaseException], ...] = (OSError, TimeoutError),
    ) -> None:
        self._sessions = sessions
        self._feed = feed
        self._region = region
        self._create_unknown = create_unknown
        self._mailboxes = dict(mailboxes or {})
        self._transient = transient
        self._queue: asyncio.Queue[MailArrived] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._current: MailArrived | None = None
        self.filed = 0
        self.duplicates = 0
        self.failed = 0
        self.last_error: str | None = None

    def add_mailbox(self, name: str, address: str) -> None:
        """Tell the inbox a channel's own address, so its copies of our mail are ours."""
        self._mailboxes[name] = address

    def take(self, event: MailArrived) -> None:
        self._queue.put_nowait(event)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="mail filing")

    async def stop(self, *, flush_timeout: float = 10.0) -> None:
        """File what is in hand (up to ``flush_timeout`` s); the rest stays on the server."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), flush_timeout)
        if self._current is not None:  # cut off mid-filing: the adapter offers it again
            self._current.settled.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():  # not filed: the adapter finds them again next time
            self._queue.get_nowait().settled.cancel()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def _loop(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                if event.settled.done():
                    continue  # the adapter gave up on it (its connection dropped)
                self._current = event
                filed = await self._file(event)
                self._current = None
                self._count(filed)
                if not event.settled.done():
                    event.settled.set_result(None)
                self._publish(filed)
            finally:
                self._queue.task_done()

    async def _file(self, event: MailArrived) -> FiledMail:
        """File one message, waiting out database outages; never raises but for cancellation."""
        delay = RETRY_MIN_S
        mailbox = Mailbox(event.source, self._mailboxes.get(event.source, ""))
        while True:
            try:
                async with self._sessions() as session:
                    try:
                        return await file_mail(
                            session,
                            event,
                            mailbox,
                            region=self._region,
                            create_unknown=self._create_unknown,
                        )
                    except self._transient:
                        raise
                    except Exception as exc:  # one message must not stop the mailbox
                        log.exception("filing %s/%s uid %d", event.source, event.folder, event.uid)
                        return await keep_unreadable(
                            session, event, f"could not be filed: {type(exc).__name__}: {exc}"
                        )
            except self._transient as exc:
                if event.settled.done():  # the adapter went away; it will offer it again
                    return FiledMail(Filed.DUPLICATE)
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("filing mail failed, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def _count(self, filed: FiledMail) -> None:
        if filed.outcome is Filed.NEW:
            self.filed += 1
            self.last_error = None
        elif filed.outcome is Filed.DUPLICATE:
            self.duplicates += 1
        else:
            self.failed += 1
            self.last_error = str(filed.summary.get("error", ""))

    def _publish(self, filed: FiledMail) -> None:
        if filed.outcome is not Filed.NEW or filed.owner_id is None or not self._feed.anyone:
            return
        self._feed.publish(EMAIL_RECEIVED, filed.summary, users=[filed.owner_id])
