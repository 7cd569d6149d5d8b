"""The core's side of the sink: adapters hand events over here and never wait.

Two paths, so a slow database never delays a screen pop behind a backlog of
call records and never makes an adapter's reader wait:

* call snapshots go into a pending map keyed by the call's external id — a
  newer snapshot of the same call replaces the older one (snapshots are
  whole), and the writer stores them in batches, in the order calls first
  appeared. On a database error the batch is retried with backoff; nothing is
  dropped until :data:`MAX_PENDING` calls wait, and then loudly, with the
  event in the log;
* offers (a phone started ringing) go to a few screen-pop workers, and only
  when the operator at that extension has the live feed open. While a pop is
  being built the writer waits (up to :data:`POP_FIRST_S`), so the two do not
  share the database's time at the moment the operator is waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence
from typing import Final

from sqlalchemy.exc import InterfaceError, OperationalError

from commhub.channels import (
    CallOffered,
    CallsInProgress,
    CallUpdated,
    InboundEvent,
    MailArrived,
    SmsReceived,
    SmsReport,
)
from commhub.domain.opt_outs import Keywords
from commhub.services import live
from commhub.services.calls import (
    RecordedCall,
    caller_number,
    calls_ended_unseen,
    calls_seen,
    record_calls,
    snapshot_of,
)
from commhub.services.mail_inbox import MailInbox
from commhub.services.screen_pop import call_summary, screen_pop
from commhub.services.sms_inbox import SmsInbox
from commhub.store import calls as store
from commhub.store.engine import SessionFactory

log = logging.getLogger(__name__)

BATCH: Final = 200
MAX_PENDING: Final = 100_000
OFFER_QUEUE: Final = 1_000
POP_WORKERS: Final = 4
POP_FIRST_S: Final = 0.05
"""How long the call-log writer waits for screen pops in progress before it writes."""
RETRY_MIN_S: Final = 0.5
RETRY_MAX_S: Final = 30.0
TRANSIENT: Final = (OperationalError, InterfaceError, OSError, TimeoutError)
"""The database is down or the connection broke: retry the batch later, whole."""


class InboundProcessor:
    """Takes adapters' events (``sink``), records calls and pushes the live feed."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        feed: live.LiveFeed,
        region: str,
        create_unknown: bool = False,
        create_unknown_senders: bool = False,
        sms_keywords: Keywords | None = None,
    ) -> None:
        self._sessions = sessions
        self._feed = feed
        self._region = region
        self._create_unknown = create_unknown
        self._pending: dict[str, CallUpdated] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._reports: list[CallsInProgress] = []
        self._delay = RETRY_MIN_S
        self._offers: asyncio.Queue[CallOffered] = asyncio.Queue(maxsize=OFFER_QUEUE)
        self._popping = 0
        self._pops_done = asyncio.Event()
        self._pops_done.set()
        self._tasks: list[asyncio.Task[None]] = []
        self.calls_up: set[str] = set()
        """Calls this process has seen up, since the PBX's own list or a live event said so:
        only these pop again on a page (a call the log shows open may have ended while the
        hub was down, and the PBX has not said so yet)."""
        self.recorded = 0
        self.not_recorded = 0
        """Call updates dropped (backlog full) or refused by the store; each one is logged."""
        self.last_error: str | None = None
        """The database's error while it is unreachable, or the last call it refused."""
        self.mail = MailInbox(
            sessions=sessions,
            feed=feed,
            region=region,
            create_unknown=create_unknown_senders,
            transient=TRANSIENT,
        )
        """Mail goes its own way: each message is settled back to its adapter once filed."""
        self.sms = SmsInbox(
            sessions=sessions,
            feed=feed,
            region=region,
            keywords=sms_keywords,
            create_unknown=create_unknown,
            transient=TRANSIENT,
        )
        """SMS and delivery reports too, each settled back to its gateway once filed."""

    def sink(self, event: InboundEvent) -> None:
        """The :data:`~commhub.channels.EventSink` handed to every adapter; returns at once."""
        if isinstance(event, CallOffered):
            self._offer(event)
            return
        if isinstance(event, MailArrived):
            self.mail.take(event)
            return
        if isinstance(event, SmsReceived | SmsReport):
            self.sms.take(event)
            return
        if isinstance(event, CallsInProgress):
            self._reports.append(event)
            self._idle.clear()
            self._wake.set()
            return
        pending = self._pending
        if event.external_id in pending:
            pending[event.external_id] = event
        else:
            if len(pending) >= MAX_PENDING:
                self.not_recorded += 1
                log.error("call log backlog full, not recorded: %r", event)
                return
            pending[event.external_id] = event
        self._idle.clear()
        self._wake.set()

    def _offer(self, event: CallOffered) -> None:
        if not self._feed.anyone:
            return
        try:
            self._offers.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("screen pop for %s skipped: pop workers behind", event.extension)
            return
        self._popping += 1
        self._pops_done.clear()

    async def start(self) -> None:
        await self.mail.start()
        await self.sms.start()
        self._tasks = [asyncio.create_task(self._write_loop(), name="call-log writer")]
        self._tasks += [
            asyncio.create_task(self._pop_loop(), name=f"screen pop {i}")
            for i in range(POP_WORKERS)
        ]

    async def stop(self, *, flush_timeout: float = 10.0) -> None:
        """Write what is pending (for up to ``flush_timeout`` seconds), then stop."""
        await self.mail.stop(flush_timeout=flush_timeout)
        await self.sms.stop(flush_timeout=flush_timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drained(), flush_timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._pending:
            log.error("stopped with %d call updates not recorded", len(self._pending))

    async def drained(self) -> None:
        """Wait until every call snapshot handed in so far is stored."""
        await self._idle.wait()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending or self._reports:
                if self._popping:
                    # A phone is ringing: its pop goes first, the log a moment later.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._pops_done.wait(), POP_FIRST_S)
                if self._pending:
                    await self._write_batch()
                else:
                    await self._close_unseen(self._reports[0])
            self._idle.set()

    async def _write_batch(self) -> None:
        """Store the oldest pending snapshots; on a database outage put them back and wait."""
        keys = list(itertools.islice(self._pending, BATCH))
        batch = [self._pending.pop(key) for key in keys]
        try:
            try:
                recorded = await self._record(batch)
            except TRANSIENT:
                raise
            except Exception as exc:  # one bad snapshot must not stop the call log
                recorded = await self._record_each(batch, exc)
        except TRANSIENT as exc:
            for update in batch:
                self._pending.setdefault(update.external_id, update)
            await self._back_off(exc, f"recording {len(batch)} calls")
            return
        self._recovered()
        self.recorded += len(recorded)
        for item in recorded:
            if item.call.ended_at is None:
                self.calls_up.add(item.call.external_id)
            else:
                self.calls_up.discard(item.call.external_id)
        self._publish(recorded)

    async def _close_unseen(self, report: CallsInProgress) -> None:
        """After a (re)connect: end the calls the log shows open that the PBX no longer has.

        A heartbeat (not ``complete``) only stamps the calls it lists as seen up now.
        """
        try:
            async with self._sessions() as session:
                if not report.complete:
                    await calls_seen(session, report)
                    ended = []
                else:
                    ended = await calls_ended_unseen(session, report)
        except TRANSIENT as exc:
            await self._back_off(exc, f"checking {report.source}'s open calls")
            return
        except Exception:
            log.exception("checking %s's open calls failed; they stay open", report.source)
            ended = []
        self._reports.remove(report)
        if report.complete:
            gone = {c for c in self.calls_up if c.startswith(report.prefix)} - report.external_ids
            self.calls_up -= gone
        self._recovered()
        if ended:
            log.warning(
                "%s: %d calls ended while the hub was not listening; closed at %s",
                report.source,
                len(ended),
                report.at.isoformat(),
            )
        for update in ended:
            self.sink(update)

    async def _back_off(self, exc: BaseException, what: str) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.error("%s failed, retrying in %.1fs: %s", what, self._delay, exc)
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, RETRY_MAX_S)

    def _recovered(self) -> None:
        if self._delay > RETRY_MIN_S:  # the database is back
            self._delay = RETRY_MIN_S
            self.last_error = None

    async def _record_each(
        self, batch: Sequence[CallUpdated], error: Exception
    ) -> list[RecordedCall]:
        """The store refused a batch: record its snapshots one by one, set aside the bad one.

        A snapshot the store refuses on its own is logged whole with the
        reason and counted in :attr:`not_recorded` (shown on the channels
        view); the calls around it are stored as usual.
        """
        log.warning("recording %d calls failed (%s); trying them one by one", len(batch), error)
        recorded: list[RecordedCall] = []
        for update in batch:
            try:
                recorded += await self._record([update])
            except TRANSIENT:
                raise
            except Exception as exc:
                self.not_recorded += 1
                self.last_error = f"call {update.external_id} not recorded: {exc}"
                log.exception("call not recorded, the store refused it: %r", update)
        return recorded

    async def _record(self, batch: Sequence[CallUpdated]) -> list[RecordedCall]:
        async with self._sessions() as session:
            return await record_calls(
                session,
                batch,
                default_region=self._region,
                create_unknown=self._create_unknown,
            )

    def _publish(self, recorded: Sequence[RecordedCall]) -> None:
        if not self._feed.anyone:
            return
        for item in recorded:
            if not item.changed:
                continue
            call = item.call
            # The stored call, not the snapshot: after a restart a snapshot knows less than
            # the log, and the feed must never show a call ending twice or going backwards.
            stored = snapshot_of(call, source=item.update.source)
            number = caller_number(item.update, self._region)
            data = {
                "interaction_id": call.id,
                "contact_id": call.contact_id,
                "operator_id": call.operator_id,
                "call": call_summary(stored, number.query.e164, number.region),
            }
            self._feed.publish(live.CALL_UPDATED, data, users=item.operator_ids, call_watchers=True)

    async def _pop_loop(self) -> None:
        while True:
            offer = await self._offers.get()
            try:
                await self._pop(offer)
            except TRANSIENT as exc:
                log.error("screen pop for extension %s failed: %s", offer.extension, exc)
            except Exception:
                # The call is still logged by the writer; only this pop is lost, and said so.
                log.exception("screen pop for extension %s failed", offer.extension)
            finally:
                self._popping -= 1
                if not self._popping:
                    self._pops_done.set()

    async def _pop(self, offer: CallOffered) -> None:
        async with self._sessions() as session:
            users = await store.users_by_extension(session, [offer.extension])
            user_id = users.get(offer.extension)
            if user_id is None or not self._feed.listening(user_id):
                return
            if offer.call.detail.get("reconciled"):
                # Only a call first seen in a PBX's list after a restart can be one the log
                # already holds as over (a live call is new): never pop it again.
                stored = await store.calls_by_external_id(session, [offer.call.external_id])
                row = stored.get(offer.call.external_id)
                if row is not None and row.ended_at is not None:
                    return
            payload = await screen_pop(
                session,
                offer.call,
                offer.extension,
                default_region=self._region,
                create_unknown=self._create_unknown,
            )
        self._feed.publish(live.CALL_OFFERED, payload, users=[user_id])
