"""The core's side of SMS gateways: files received messages and delivery reports in order.

A gateway adapter acknowledges an event to its gateway (HTTP 200, a
``deliver_sm_resp``) only when ``settled`` resolves, so nothing here drops
an event silently: a database outage is waited out, and an event the store
refuses sets ``settled``'s exception, which makes the gateway deliver it
again. A report on a message id not known yet (the gateway's callback
beat the answer to our own submit) is tried again a few times before it is
logged as unmatched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Final

from commhub.channels import SmsReceived, SmsReport
from commhub.domain.opt_outs import Keywords
from commhub.services import live
from commhub.services.sms_filing import Filed, Outcome, apply_report, file_received
from commhub.store.engine import SessionFactory

log = logging.getLogger(__name__)

SMS_RECEIVED: Final = "sms.received"
SMS_STATUS: Final = "sms.status"
RETRY_MIN_S: Final = 0.5
RETRY_MAX_S: Final = 30.0
UNMATCHED_RETRIES_S: Final = (1.0, 3.0, 10.0, 30.0)
"""When a report on an unknown id is tried again: its message's submit may still be answering."""

SmsEvent = SmsReceived | SmsReport


class SmsInbox:
    """Files :class:`SmsReceived` and :class:`SmsReport` events handed in by the gateways."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        feed: live.LiveFeed,
        region: str,
        keywords: Keywords | None = None,
        create_unknown: bool = False,
        transient: tuple[type[BaseException], ...] = (OSError, TimeoutError),
        unmatched_retries: Sequence[float] = UNMATCHED_RETRIES_S,
    ) -> None:
        self._sessions = sessions
        self._feed = feed
        self._region = region
        self._keywords = keywords or Keywords.of()
        self._create_unknown = create_unknown
        self._transient = transient
        self._unmatched_retries = tuple(unmatched_retries)
        self._queue: asyncio.Queue[tuple[SmsEvent, int]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._parked: set[asyncio.Task[None]] = set()
        self.received = 0
        self.reports = 0
        self.unmatched = 0
        self.failed = 0
        self.last_error: str | None = None

    def take(self, event: SmsEvent) -> None:
        self._queue.put_nowait((event, 0))

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="sms filing")

    async def stop(self, *, flush_timeout: float = 10.0) -> None:
        """File what is in hand (up to ``flush_timeout`` s); gateways redeliver the rest."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), flush_timeout)
        for task in [*self._parked, *([self._task] if self._task else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        self._parked.clear()
        while not self._queue.empty():
            event, _ = self._queue.get_nowait()
            _settle(event, ConnectionAbortedError("the hub is stopping"))

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def _loop(self) -> None:
        while True:
            event, tries = await self._queue.get()
            try:
                await self._handle(event, tries)
            finally:
                self._queue.task_done()

    async def _handle(self, event: SmsEvent, tries: int) -> None:
        try:
            filed = await self._file(event)
        except Exception as exc:  # one event must not stop the others; its gateway retries
            self.failed += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("filing %r failed; its gateway is asked to deliver it again", event)
            _settle(event, exc)
            return
        if filed.outcome is Outcome.UNMATCHED:
            self._park(event, tries)
        _settle(event, None)
        self._publish(event, filed)

    async def _file(self, event: SmsEvent) -> Filed:
        """File one event, waiting out database outages."""
        delay = RETRY_MIN_S
        while True:
            try:
                async with self._sessions() as session:
                    if isinstance(event, SmsReport):
                        return await apply_report(session, event)
                    return await file_received(
                        session,
                        event,
                        region=self._region,
                        keywords=self._keywords,
                        create_unknown=self._create_unknown,
                    )
            except self._transient as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("filing SMS traffic failed, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def _park(self, event: SmsEvent, tries: int) -> None:
        if tries >= len(self._unmatched_retries):
            self.unmatched += 1
            log.warning("%s: a report on unknown message id %r", event.source, _id(event))
            return

        async def later() -> None:
            await asyncio.sleep(self._unmatched_retries[tries])
            self._queue.put_nowait((_unsettled(event), tries + 1))

        task = asyncio.create_task(later(), name="sms report retry")
        self._parked.add(task)
        task.add_done_callback(self._parked.discard)

    def _publish(self, event: SmsEvent, filed: Filed) -> None:
        if filed.outcome is Outcome.NEW:
            self.received += 1
            self.last_error = None
            users = [filed.owner_id] if filed.owner_id is not None else []
            self._feed.publish(SMS_RECEIVED, filed.summary, users=users, call_watchers=True)
        elif filed.outcome is Outcome.CHANGED:
            self.reports += 1
            if filed.owner_id is not None:
                self._feed.publish(SMS_STATUS, filed.summary, users=[filed.owner_id])


def _settle(event: SmsEvent, error: BaseException | None) -> None:
    settled = event.settled
    if settled is None or settled.done():
        return
    if error is None:
        settled.set_result(None)
    else:
        settled.set_exception(error)


def _unsettled(event: SmsEvent) -> SmsEvent:
    """The same report again, without the future its gateway has long been answered on."""
    if isinstance(event, SmsReport):
        return SmsReport(event.source, event.gateway_id, event.state, event.at, event.reason)
    return event


def _id(event: SmsEvent) -> str:
    return event.gateway_id if isinstance(event, SmsReport) else event.external_id
