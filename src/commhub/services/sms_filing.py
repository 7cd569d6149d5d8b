"""Filing SMS traffic: a received message on the sender's card once, a report on its message.

A received message is keyed by its gateway and the gateway's id, so a
webhook delivered five times or a deliver_sm the SMSC repeats is one
interaction. Its sender is identified like a caller (one phone identity, a
number in any format). A message whose whole text is an opt-out word puts
the number on the SMS suppression list; an opt-in word lifts it. A message
from a number that got a campaign's SMS within the reply window is that
campaign's reply (the latest such campaign), STOP included: an SMS names
nothing it answers, so time and number are all there is to go by.

A delivery report names one part of a message we sent. Reports arrive more
than once and out of order, so a part's state and its message's status
only ever move forward (queued < sent < delivered/undelivered/failed).
A report on a message whose hand-over a crash cut off (outbox ``uncertain``)
is the gateway's proof that it took it: by our own key where the gateway
carries it back (Kannel's dlr-url), else by the phone and the start of the
text it quotes (an SMPP receipt), the oldest such message in doubt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import DeliveryState, SmsReceived, SmsReport
from commhub.domain import phones
from commhub.domain.interactions import Direction, Medium, NewInteraction, Status
from commhub.domain.opt_outs import Instruction, Keywords
from commhub.domain.sms_text import measure
from commhub.models import Contact, Interaction, Outbox, SmsMessage
from commhub.services import live
from commhub.services.counterparts import Counterpart, contact_for
from commhub.services.database import Database
from commhub.services.filing import Filed, Outcome
from commhub.services.live import LiveFeed
from commhub.store import campaign_replies as replies
from commhub.store import interactions as interaction_store
from commhub.store import outbox as claims
from commhub.store import sms as store
from commhub.store import suppressions

log = logging.getLogger(__name__)

REPLY_WINDOW: Final = timedelta(days=7)
"""How long after a campaign's SMS a text from its recipient counts as a reply to it."""


def external_id(source: str, gateway_id: str) -> str:
    """Gateways number their messages each on their own: the key names the gateway."""
    return f"{source}:{gateway_id}"


async def file_received(
    session: AsyncSession,
    event: SmsReceived,
    *,
    region: str,
    keywords: Keywords,
    create_unknown: bool,
    reply_window: timedelta = REPLY_WINDOW,
) -> Filed:
    """Store ``event`` on its sender's card (once), threaded to the campaign it answers, and
    act on STOP/START; the caller commits."""
    key = external_id(event.source, event.external_id)
    found = await contact_for(session, event.sender, region=region, create=create_unknown)
    contact_id = found.contact_id
    address = phones.read_number(event.sender, region).e164 or event.sender.strip()
    campaign_id = await _campaign_answered(session, found, address, event, reply_window)
    shape = measure(event.text)
    interaction, created = await interaction_store.record(
        session,
        NewInteraction(
            channel=Medium.SMS,
            direction=Direction.INBOUND,
            status=Status.RECEIVED,
            external_id=key,
            occurred_at=event.received_at,
            from_address=address,
            to_address=event.recipient,
            contact_id=contact_id,
            campaign_id=campaign_id,
            summary=" ".join(event.text.split())[:500],
            extra={"gateway": event.source, "parts": event.parts},
        ),
    )
    if not created:
        return Filed(Outcome.DUPLICATE, interaction.id)
    message = SmsMessage(
        interaction_id=interaction.id,
        gateway=event.source,
        sender=address[:64],
        recipient=event.recipient[:64],
        text=event.text,
        encoding=shape.encoding.value,
        segments=max(shape.segments, event.parts),
    )
    session.add(message)
    instruction = keywords.instruction(event.text)
    if instruction is Instruction.STOP:
        await suppressions.suppress(
            session,
            Medium.SMS,
            address,
            reason=f"replied {event.text.strip()[:40]!r}",
            source=f"sms {key}",
        )
    elif instruction is Instruction.START:
        await suppressions.lift_address(session, Medium.SMS, address)
    owner = await _owner(session, contact_id)
    if instruction is not None:
        log.info("%s: %s opted %s", event.source, address, "out" if instruction == "stop" else "in")
    summary = {
        "interaction_id": interaction.id,
        "contact_id": contact_id,
        "from": address,
        "to": event.recipient,
        "text": event.text[:500],
        "opt": instruction.value if instruction else None,
        "campaign_id": campaign_id,
    }
    return Filed(Outcome.NEW, interaction.id, contact_id, owner, summary)


async def _campaign_answered(
    session: AsyncSession,
    found: Counterpart,
    address: str,
    event: SmsReceived,
    window: timedelta,
) -> int | None:
    """The campaign whose SMS this number got last within ``window`` before ``event``."""
    if window <= timedelta(0):
        return None
    owners = [found.contact_id] if found.contact_id is not None else list(found.candidates)
    return await replies.latest_sms_campaign(
        session, owners, address, since=event.received_at - window, until=event.received_at
    )


async def apply_report(session: AsyncSession, report: SmsReport) -> Filed:
    """Move the reported part, and its message, forward; never backwards. The caller commits."""
    found = await store.part(session, report.source, report.gateway_id)
    if found is None and await _settle_doubt(session, report):
        found = await store.part(session, report.source, report.gateway_id)
    if found is None:
        return Filed(Outcome.UNMATCHED)
    part, message, interaction = found
    if report.state.rank <= DeliveryState(part.state).rank:
        return Filed(Outcome.UNCHANGED, interaction.id)
    part.state = report.state.value
    part.reason = report.reason or None
    parts = await store.parts_of(session, message.id)
    state = overall(DeliveryState(p.state) for p in parts)
    changed = _moves(_delivery_state(interaction.status), state)
    if changed:
        interaction.status = state.value
        if report.reason and state in (DeliveryState.UNDELIVERED, DeliveryState.FAILED):
            message.reason = report.reason
            interaction.extra = {**interaction.extra, "reason": report.reason}
    owner = await _owner(session, interaction.contact_id)
    summary = {
        "interaction_id": interaction.id,
        "contact_id": interaction.contact_id,
        "status": interaction.status,
        "reason": message.reason,
    }
    outcome = Outcome.CHANGED if changed else Outcome.UNCHANGED
    return Filed(outcome, interaction.id, interaction.contact_id, owner, summary)


async def _settle_doubt(session: AsyncSession, report: SmsReport) -> bool:
    """Settle the uncertain message this report proves the gateway took; no commit."""
    doubt = (
        select(Outbox, SmsMessage)
        .join(SmsMessage, SmsMessage.interaction_id == Outbox.interaction_id)
        .where(Outbox.source == report.source, Outbox.state == claims.UNCERTAIN)
    )
    row = (await session.execute(doubt.where(Outbox.key == report.gateway_id))).first()
    if row is None and report.handset:
        candidates = await session.execute(
            doubt.where(SmsMessage.recipient == report.handset).order_by(Outbox.id).limit(50)
        )
        head = " ".join(report.text_head.split())
        row = next(
            (c for c in candidates if " ".join(c[1].text.split()).startswith(head)),
            None,
        )
    if row is None:
        return False
    outbox, message = row[0], row[1]
    outbox.state = claims.SENT
    outbox.sent_at = report.at
    outbox.reply = report.gateway_id[:1000]
    outbox.last_error = f"{outbox.last_error}; the gateway's report proved it was taken"[:2000]
    await store.add_parts(session, message, [report.gateway_id], DeliveryState.QUEUED.value)
    interaction = await session.get(Interaction, outbox.interaction_id)
    if interaction is not None and interaction.status == Status.UNCERTAIN.value:
        interaction.status = Status.QUEUED.value
    await session.flush()
    log.info("SMS %s in doubt: %s's report shows it was sent", outbox.key, report.source)
    return True


def _delivery_state(status: str) -> DeliveryState:
    """An SMS interaction's status as a delivery state; one in doubt counts as queued."""
    try:
        return DeliveryState(status)
    except ValueError:
        return DeliveryState.QUEUED


def overall(states: Iterable[DeliveryState]) -> DeliveryState:
    """A message's state from its parts': any part lost loses it; delivered when all are."""
    found = list(states)
    for bad in (DeliveryState.FAILED, DeliveryState.UNDELIVERED):
        if bad in found:
            return bad
    if found and all(s is DeliveryState.DELIVERED for s in found):
        return DeliveryState.DELIVERED
    if any(s.rank >= 1 for s in found):
        return DeliveryState.SENT
    return DeliveryState.QUEUED


def _moves(current: DeliveryState, state: DeliveryState) -> bool:
    """Forward only; among final states a lost part turns ``delivered`` into its failure."""
    if state.rank != current.rank:
        return state.rank > current.rank
    return current is DeliveryState.DELIVERED and state is not DeliveryState.DELIVERED


async def _owner(session: AsyncSession, contact_id: int | None) -> int | None:
    if contact_id is None:
        return None
    return await session.scalar(select(Contact.owner_id).where(Contact.id == contact_id))


UNMATCHED_RETRIES_S: Final = (1.0, 3.0, 10.0, 30.0)
"""When a report on an unknown id is filed again: its message's submit may still be answering."""

SmsEvent = SmsReceived | SmsReport


class SmsStep:
    """The SMS step in filing: received messages and delivery reports, settled with the gateway.

    A gateway adapter acknowledges an event to its gateway (HTTP 200, a
    ``deliver_sm_resp``) only when ``settled`` resolves, so nothing here drops
    an event silently: one the store refuses sets ``settled``'s exception,
    which makes the gateway deliver it again. A report on a message id not
    known yet (the gateway's callback beat the answer to our own submit) is
    filed again a few times before it is logged as unmatched.
    """

    name = "sms"
    waits = True

    def __init__(
        self,
        *,
        feed: LiveFeed,
        region: str,
        keywords: Keywords | None = None,
        create_unknown: bool,
        resubmit: Callable[[SmsEvent], None],
        unmatched_retries: Sequence[float] = UNMATCHED_RETRIES_S,
        reply_window: timedelta = REPLY_WINDOW,
    ) -> None:
        self._feed = feed
        self._region = region
        self._keywords = keywords or Keywords.of()
        self._create_unknown = create_unknown
        self._resubmit = resubmit
        self._unmatched_retries = tuple(unmatched_retries)
        self._reply_window = reply_window
        self._tries: dict[int, int] = {}
        self._parked: set[asyncio.Task[None]] = set()
        self.received = 0
        self.reports = 0
        self.unmatched = 0
        self.failed = 0
        self.last_error: str | None = None

    def key(self, event: SmsEvent) -> Hashable:
        return id(event)

    def wanted(self, event: SmsEvent) -> bool:
        return True

    async def file(self, session: AsyncSession, events: Sequence[SmsEvent]) -> list[Filed]:
        results: list[Filed] = []
        for event in events:
            if isinstance(event, SmsReport):
                results.append(await apply_report(session, event))
            else:
                results.append(
                    await file_received(
                        session,
                        event,
                        region=self._region,
                        keywords=self._keywords,
                        create_unknown=self._create_unknown,
                        reply_window=self._reply_window,
                    )
                )
        return results

    async def refuse(self, db: Database, event: SmsEvent, error: Exception) -> Filed:
        return Filed(Outcome.REFUSED, error=error)

    def done(self, event: SmsEvent, result: Filed) -> None:
        tries = self._tries.pop(id(event), 0)
        if result.outcome is Outcome.REFUSED:
            self.failed += 1
            self.last_error = f"{type(result.error).__name__}: {result.error}"
            _settle(event, result.error or RuntimeError("refused"))
            return
        if result.outcome is Outcome.UNMATCHED:
            self._park(event, tries)
        _settle(event, None)
        if result.outcome is Outcome.NEW:
            self.received += 1
            self.last_error = None
            users = [result.owner_id] if result.owner_id is not None else []
            self._feed.publish(live.SMS_RECEIVED, result.summary, users=users, call_watchers=True)
        elif result.outcome is Outcome.CHANGED:
            self.reports += 1
            if result.owner_id is not None:
                self._feed.publish(live.SMS_STATUS, result.summary, users=[result.owner_id])

    def drop(self, event: SmsEvent, why: str) -> None:
        self._tries.pop(id(event), None)
        _settle(event, ConnectionAbortedError(why))

    async def stop(self) -> None:
        for task in list(self._parked):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._parked.clear()

    def _park(self, event: SmsEvent, tries: int) -> None:
        if tries >= len(self._unmatched_retries):
            self.unmatched += 1
            gateway_id = event.gateway_id if isinstance(event, SmsReport) else event.external_id
            log.warning("%s: a report on unknown message id %r", event.source, gateway_id)
            return
        again = _unsettled(event)

        async def later() -> None:
            await asyncio.sleep(self._unmatched_retries[tries])
            self._tries[id(again)] = tries + 1
            self._resubmit(again)

        task = asyncio.create_task(later(), name="sms report retry")
        self._parked.add(task)
        task.add_done_callback(self._parked.discard)


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
