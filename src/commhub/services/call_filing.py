"""The calls' step in filing: snapshots merged into the call log, and the PBX's own list
of calls up after a (re)connect.

A newer snapshot of a call replaces an older one still waiting (snapshots are
whole), so a burst of events on one call is one write. A snapshot the store
refuses on its own is logged whole with the reason and counted in
:attr:`CallStep.not_recorded` (shown on the channels view); the calls around it
are filed as usual.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import CallsInProgress, CallUpdated, InboundEvent
from commhub.services import live
from commhub.services.calls import (
    RecordedCall,
    caller_number,
    calls_ended_unseen,
    calls_seen,
    record_calls,
    snapshot_of,
)
from commhub.services.database import Database
from commhub.services.deal_rules import open_for_inbound
from commhub.services.screen_pop import call_summary

log = logging.getLogger(__name__)

CallEvent = CallUpdated | CallsInProgress


@dataclass(frozen=True, slots=True)
class Reconciled:
    """A PBX's list of calls up, applied: the calls it no longer has, now ended."""

    report: CallsInProgress
    ended: list[CallUpdated]


class CallStep:
    """Files call snapshots and the PBX's lists of calls in progress."""

    name = "calls"
    waits = False

    def __init__(
        self,
        *,
        feed: live.LiveFeed,
        region: str,
        create_unknown: bool,
        resubmit: Callable[[InboundEvent], None],
    ) -> None:
        self._feed = feed
        self._region = region
        self._create_unknown = create_unknown
        self._resubmit = resubmit
        self._serial = itertools.count()
        self.calls_up: set[str] = set()
        """Calls this process has seen up, since the PBX's own list or a live event said so:
        only these pop again on a page (a call the log shows open may have ended while the
        hub was down, and the PBX has not said so yet)."""
        self.recorded = 0
        self.not_recorded = 0
        """Call updates dropped (backlog full) or refused by the store; each one is logged."""
        self.last_error: str | None = None

    def key(self, event: CallEvent) -> Hashable:
        if isinstance(event, CallsInProgress):
            return ("report", next(self._serial))
        return event.external_id

    def wanted(self, event: CallEvent) -> bool:
        return True

    async def file(self, session: AsyncSession, events: Sequence[CallEvent]) -> list[Any]:
        results: list[Any] = []
        for is_report, run in itertools.groupby(events, lambda e: isinstance(e, CallsInProgress)):
            if not is_report:
                snapshots = [e for e in run if isinstance(e, CallUpdated)]
                recorded = await record_calls(
                    session,
                    snapshots,
                    default_region=self._region,
                    create_unknown=self._create_unknown,
                )
                for item in recorded:
                    if item.changed:
                        await open_for_inbound(session, item.call, region=self._region)
                results += recorded
                continue
            for report in run:
                assert isinstance(report, CallsInProgress)
                if report.complete:
                    results.append(Reconciled(report, await calls_ended_unseen(session, report)))
                else:
                    await calls_seen(session, report)
                    results.append(Reconciled(report, []))
        return results

    async def refuse(self, db: Database, event: CallEvent, error: Exception) -> Any:
        if isinstance(event, CallsInProgress):
            log.error("checking %s's open calls failed; they stay open: %s", event.source, error)
            return None
        self.not_recorded += 1
        self.last_error = f"call {event.external_id} not recorded: {error}"
        return None

    def drop(self, event: CallEvent, why: str) -> None:
        if isinstance(event, CallUpdated):
            self.not_recorded += 1
        log.error("call event not recorded (%s): %r", why, event)

    async def stop(self) -> None:
        return None

    def done(self, event: CallEvent, result: Any) -> None:
        if isinstance(result, Reconciled):
            self._reconciled(result)
        elif isinstance(result, RecordedCall):
            self._recorded(result)

    def _recorded(self, item: RecordedCall) -> None:
        self.recorded += 1
        call = item.call
        if call.ended_at is None:
            self.calls_up.add(call.external_id)
        else:
            self.calls_up.discard(call.external_id)
        if not item.changed or not self._feed.anyone:
            return
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

    def _reconciled(self, result: Reconciled) -> None:
        report = result.report
        if report.complete:
            gone = {c for c in self.calls_up if c.startswith(report.prefix)} - report.external_ids
            self.calls_up -= gone
        if result.ended:
            log.warning(
                "%s: %d calls ended while the hub was not listening; closed at %s",
                report.source,
                len(result.ended),
                report.at.isoformat(),
            )
        for update in result.ended:
            self._resubmit(update)
