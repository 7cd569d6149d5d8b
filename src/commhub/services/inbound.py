"""The inbound path, assembled: the one filing writer, each channel's step, the pop workers.

Nothing here files anything; it only wires the parts so that the hub, the
tests and the benchmarks start the same path (``services/filing.py`` is the
path itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from commhub.channels import (
    CallOffered,
    CallsInProgress,
    CallUpdated,
    EmailArrived,
    InboundEvent,
    SmsReceived,
    SmsReport,
)
from commhub.domain.opt_outs import Keywords
from commhub.services.call_filing import CallStep
from commhub.services.database import Database
from commhub.services.email_filing import EmailStep
from commhub.services.filing import Filing
from commhub.services.live import LiveFeed
from commhub.services.pop_workers import PopWorkers
from commhub.services.sms_filing import REPLY_WINDOW, SmsStep


@dataclass(frozen=True, slots=True)
class InboundHealth:
    """What the channels view shows of filing: backlogs, counts and the last error of each."""

    call_backlog: int
    calls_not_recorded: int
    call_log_error: str | None
    mail_backlog: int
    mail_filed: int
    mail_unreadable: int
    mail_error: str | None
    sms_received: int
    sms_reports: int
    sms_unmatched_reports: int
    sms_error: str | None


class Inbound:
    """Where every adapter's events go in (:meth:`sink`), and what the hub starts and stops."""

    def __init__(
        self,
        *,
        db: Database,
        feed: LiveFeed,
        region: str,
        create_unknown: bool = False,
        create_unknown_senders: bool = False,
        sms_keywords: Keywords | None = None,
        campaign_reply_window: timedelta = REPLY_WINDOW,
    ) -> None:
        self.pops = PopWorkers(db, feed, region=region, create_unknown=create_unknown)
        self.calls = CallStep(
            feed=feed, region=region, create_unknown=create_unknown, resubmit=self.sink
        )
        self.mail = EmailStep(feed=feed, region=region, create_unknown=create_unknown_senders)
        self.sms = SmsStep(
            feed=feed,
            region=region,
            keywords=sms_keywords,
            create_unknown=create_unknown,
            resubmit=self.sink,
            reply_window=campaign_reply_window,
        )
        self.filing = Filing(
            db,
            {
                CallOffered: self.pops.offer,
                CallUpdated: self.calls,
                CallsInProgress: self.calls,
                EmailArrived: self.mail,
                SmsReceived: self.sms,
                SmsReport: self.sms,
            },
            pops_busy=self.pops.busy,
        )

    def sink(self, event: InboundEvent) -> None:
        """The :data:`~commhub.channels.EventSink` handed to every adapter; returns at once."""
        self.filing.sink(event)

    @property
    def calls_up(self) -> set[str]:
        return self.calls.calls_up

    async def start(self) -> None:
        await self.filing.start()
        await self.pops.start()

    async def stop(self, *, flush_timeout: float = 10.0) -> None:
        """File what is pending (for up to ``flush_timeout`` s), then stop."""
        await self.filing.stop(flush_timeout=flush_timeout)
        await self.pops.stop()

    async def drained(self) -> None:
        """Wait until every event handed in so far is filed."""
        await self.filing.drained()

    def health(self) -> InboundHealth:
        outage = self.filing.last_error
        return InboundHealth(
            call_backlog=self.filing.backlog(self.calls.name),
            calls_not_recorded=self.calls.not_recorded,
            call_log_error=outage or self.calls.last_error,
            mail_backlog=self.filing.backlog(self.mail.name),
            mail_filed=self.mail.filed,
            mail_unreadable=self.mail.failed,
            mail_error=outage or self.mail.last_error,
            sms_received=self.sms.received,
            sms_reports=self.sms.reports,
            sms_unmatched_reports=self.sms.unmatched,
            sms_error=outage or self.sms.last_error,
        )
