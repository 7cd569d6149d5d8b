"""Calls on the card: the one place a PBX's call snapshots become interactions.

A call is one row for its whole life (ringing → answered → ended), keyed by
the PBX's external id. A snapshot never moves a call backwards: once a call
has ended, a late or replayed "ringing" changes nothing, so replaying a whole
event stream logs nothing new.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import CallsInProgress, CallUpdated
from commhub.domain import phones
from commhub.domain.contacts import name_key
from commhub.domain.interactions import Channel, Direction, NewInteraction, Status
from commhub.services.identify import Identity, Verdict, identify
from commhub.store import calls as store
from commhub.store import contacts as contact_store
from commhub.store import interactions as interaction_store
from commhub.store.schema import Contact, Interaction

log = logging.getLogger(__name__)

MISSED_STATUSES = frozenset({Status.MISSED, Status.ABANDONED, Status.BUSY})


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """A call row after a snapshot was applied, and whether anything changed."""

    call: Interaction
    update: CallUpdated
    changed: bool
    operator_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CallerNumber:
    """The customer's number read in the call's region."""

    presented: str
    region: str
    query: phones.PhoneQuery

    @property
    def address(self) -> str:
        """What the card stores: E.164 when the number could be read, else as presented."""
        return self.query.e164 or self.presented


def caller_number(update: CallUpdated, default_region: str) -> CallerNumber:
    region = update.region or default_region
    return CallerNumber(update.number, region, phones.read_number(update.number, region))


async def record_calls(
    session: AsyncSession,
    updates: Sequence[CallUpdated],
    *,
    default_region: str,
    create_unknown: bool = False,
) -> list[RecordedCall]:
    """Apply a batch of snapshots in order and commit once.

    New calls are matched to a contact by the customer's number (an ambiguous
    or unknown number leaves the call unmatched, visible in the log); the
    operator is the user whose extension talked first, or, for a call nobody
    answered, whose phone rang first.
    """
    existing = await store.calls_by_external_id(session, (u.external_id for u in updates))
    extensions = {e for u in updates for e in (*u.operators, *u.rang)}
    users = await store.users_by_extension(session, extensions)
    results: list[RecordedCall] = []
    for update in updates:
        number = caller_number(update, default_region)
        operator_ids = tuple(users[e] for e in (*update.operators, *update.rang) if e in users)
        row = existing.get(update.external_id)
        if row is None:
            contact_id = await contact_for_caller(
                session, number, name=update.caller_name, create=create_unknown
            )
            row, changed = await _insert(session, update, number, users, contact_id)
            existing[update.external_id] = row
        else:
            changed = _apply(row, update, number, users)
        if changed and update.ended:
            await _follow_up(session, row, update, number)
        if changed and update.request_id:
            await store.link_request(session, update.request_id, row)
        results.append(RecordedCall(row, update, changed, tuple(dict.fromkeys(operator_ids))))
    await session.commit()
    return results


async def _insert(
    session: AsyncSession,
    update: CallUpdated,
    number: CallerNumber,
    users: dict[str, int],
    contact_id: int | None,
) -> tuple[Interaction, bool]:
    fields = _fields(update, number, users)
    new = NewInteraction(
        channel=Channel.CALL,
        direction=update.direction,
        status=update.status,
        external_id=update.external_id,
        occurred_at=update.started_at,
        contact_id=contact_id,
        **fields,
    )
    return await interaction_store.record(session, new)


def _apply(
    row: Interaction, update: CallUpdated, number: CallerNumber, users: dict[str, int]
) -> bool:
    """Bring a stored call up to ``update``; never backwards. Returns whether it changed."""
    if row.ended_at is not None and not update.ended:
        return False
    fields = _fields(update, number, users)
    fields["status"] = update.status.value
    fields["occurred_at"] = min(row.occurred_at, update.started_at)
    if row.answered_at is not None and fields["answered_at"] is not None:
        fields["answered_at"] = min(row.answered_at, fields["answered_at"])
    if fields["operator_id"] is None:
        fields["operator_id"] = row.operator_id
    changed = False
    for name, value in fields.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _fields(update: CallUpdated, number: CallerNumber, users: dict[str, int]) -> dict[str, Any]:
    """The interaction columns a snapshot sets (not the contact, not the status on insert)."""
    handled = update.operators or update.rang
    operator_id = next((users[e] for e in handled if e in users), None)
    if update.direction is Direction.OUTBOUND:
        from_address, to_address = update.did, number.address
    else:
        from_address, to_address = number.address, update.did
    extra: dict[str, Any] = {
        "source": update.source,
        "number_as_presented": update.number,
        "operators": list(update.operators),
        "rang": list(update.rang),
        **update.detail,
    }
    if update.caller_name:
        extra["caller_name"] = update.caller_name
    if update.request_id:
        extra["request_id"] = update.request_id
    return {
        "from_address": from_address[:320],
        "to_address": to_address[:320],
        "operator_id": operator_id,
        "answered_at": update.answered_at,
        "ended_at": update.ended_at,
        "duration_s": update.duration_s,
        "recording_ref": update.recording,
        "queue": update.queue,
        "extra": extra,
    }


async def _follow_up(
    session: AsyncSession, row: Interaction, update: CallUpdated, number: CallerNumber
) -> None:
    """An ended call opens a missed-call follow-up, or closes the open ones for its number."""
    match_key = number.query.match_key if number.query.searchable else None
    if update.direction is Direction.INBOUND and update.status in MISSED_STATUSES:
        await session.flush()
        await store.open_missed(session, row, number=number.address, match_key=match_key)
    elif update.status is Status.ANSWERED and match_key is not None:
        await session.flush()
        await store.close_missed_by_call(
            session, match_key=match_key, before=row.occurred_at, call_id=row.id
        )


UNSEEN_END_REASON = "ended while the hub was not listening; outcome unknown"
_SNAPSHOT_KEYS = frozenset({"source", "operators", "rang", "caller_name", "request_id"})
"""Keys of ``Interaction.extra`` that a snapshot sets from its own fields."""


async def calls_ended_unseen(session: AsyncSession, report: CallsInProgress) -> list[CallUpdated]:
    """Final snapshots for this PBX's calls still open in the log but no longer up.

    Answered calls end at ``report.at`` with the talk time up to then; calls
    nobody was seen answering end as missed (inbound: so someone calls back)
    or unanswered (outbound), with the reason. Each is marked
    ``approximate_end_s`` like a call closed after a link drop, and goes
    through :func:`record_calls` like any snapshot (one row, follow-ups, feed).
    """
    rows = await store.open_calls(session, prefix=report.prefix, before=report.at)
    return [
        _ended_unseen(row, report) for row in rows if row.external_id not in report.external_ids
    ]


def _ended_unseen(row: Interaction, report: CallsInProgress) -> CallUpdated:
    extra = row.extra or {}
    inbound = row.direction == Direction.INBOUND.value
    detail = {k: v for k, v in extra.items() if k not in _SNAPSHOT_KEYS}
    detail["approximate_end_s"] = None
    answered = row.answered_at
    if answered is not None:
        status, talk = Status.ANSWERED, max(0, round((report.at - answered).total_seconds()))
    else:
        status, talk = (Status.MISSED if inbound else Status.NO_ANSWER), 0
        detail["reason"] = UNSEEN_END_REASON
    return CallUpdated(
        source=str(extra.get("source", report.source)),
        external_id=row.external_id,
        direction=Direction(row.direction),
        status=status,
        ended=True,
        started_at=row.occurred_at,
        number=row.from_address if inbound else row.to_address,
        caller_name=str(extra.get("caller_name", "")),
        did=row.to_address if inbound else row.from_address,
        answered_at=answered,
        ended_at=report.at,
        duration_s=talk,
        operators=tuple(extra.get("operators", ())),
        rang=tuple(extra.get("rang", ())),
        queue=row.queue,
        recording=row.recording_ref,
        request_id=extra.get("request_id"),
        detail=detail,
    )


_creating: dict[str, asyncio.Lock] = {}


async def contact_for_caller(
    session: AsyncSession, number: CallerNumber, *, name: str, create: bool
) -> int | None:
    """The contact a caller's number names; with ``create``, a new one for an unknown number.

    Screen pop and the call record may both want to create the contact for
    the same ringing call: a per-number lock makes the second find the first's.
    """
    found = await identify_number(session, number)
    if found.verdict is Verdict.MATCH:
        return found.contact_ids[0]
    if not create or found.verdict is not Verdict.UNKNOWN or number.query.e164 is None:
        return None
    e164 = number.query.e164
    lock = _creating.setdefault(e164, asyncio.Lock())
    try:
        async with lock:
            found = await identify_number(session, number)
            if found.verdict is Verdict.MATCH:
                return found.contact_ids[0]
            contact = Contact(name=" ".join(name.split()), name_key=name_key(name), extra={})
            session.add(contact)
            await session.flush()
            phone = phones.Phone(e164=e164, match_key=number.query.match_key or "")
            await contact_store.add_points(session, contact.id, [phone], [])
            await session.commit()
            log.info("created contact %d for an unknown caller", contact.id)
            return contact.id
    finally:
        if not lock.locked():
            _creating.pop(e164, None)


async def identify_number(session: AsyncSession, number: CallerNumber) -> Identity:
    """Who is behind the caller's number: the same lookup as everywhere, in the call's region."""
    if not number.query.searchable:
        return Identity(
            address=number.presented,
            verdict=Verdict.NOT_A_CUSTOMER,
            kind="phone",
            reason=number.query.kind.value,
        )
    return await identify(session, number.presented, region=number.region)
