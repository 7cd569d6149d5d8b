"""Calls on the card: the one place a PBX's call snapshots become interactions.

A call is one row for its whole life (ringing → answered → ended), keyed by
the PBX's external id. A snapshot never moves a call backwards: once a call
has ended, a late or replayed "ringing" changes nothing, so replaying a whole
event stream logs nothing new.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import CallsInProgress, CallUpdated
from commhub.domain import phones
from commhub.domain.interactions import Direction, Medium, NewInteraction, Status
from commhub.models import Interaction
from commhub.services.counterparts import contact_for
from commhub.store import calls as store
from commhub.store import interactions as interaction_store

log = logging.getLogger(__name__)

MISSED_STATUSES = frozenset({Status.MISSED, Status.ABANDONED, Status.BUSY})
CLOCK_SLACK_S: Final = 2
"""A call's start moves earlier only when a snapshot corrects it by more than this."""


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
    """Apply a batch of snapshots in order, in ``session``; the caller commits.

    New calls are matched to a contact by the customer's number (an ambiguous
    or unknown number leaves the call unmatched, visible in the log); the
    operator is the user whose extension talked first, or, for a call nobody
    answered, whose phone rang first. A snapshot is merged into what is
    stored by :func:`merge_call`'s rules, so one that knows less (after a
    restart, a reconnect) never erases what an earlier one proved.
    """
    existing = await store.calls_by_external_id(session, (u.external_id for u in updates))
    extensions = {e for u in updates for e in (*u.operators, *u.rang)}
    extensions |= {e for row in existing.values() for e in _extra_list(row, "operators")}
    extensions |= {e for row in existing.values() for e in _extra_list(row, "rang")}
    users = await store.users_by_extension(session, extensions)
    results: list[RecordedCall] = []
    for update in updates:
        number = caller_number(update, default_region)
        seen_at = _latest(update)
        row = existing.get(update.external_id)
        if row is None:
            contact_id = await _contact_for(session, number, update.caller_name, create_unknown)
            row, changed = await _insert(session, update, number, users, contact_id, seen_at)
            existing[update.external_id] = row
            ended_now = update.ended
        else:
            was = (row.ended_at, row.status)
            had_number = bool(_customer_address(row))
            changed = merge_call(row, update, number, users, seen_at=seen_at)
            ended_now = row.ended_at is not None and was != (row.ended_at, row.status)
            if changed and not had_number and row.contact_id is None and _customer_address(row):
                row.contact_id = await _contact_for(
                    session, number, update.caller_name, create_unknown
                )
        if ended_now:
            await _follow_up(session, row, number)
        if changed and update.request_id:
            await store.link_request(session, update.request_id, row)
        operator_ids = tuple(
            users[e]
            for e in (*_extra_list(row, "operators"), *_extra_list(row, "rang"))
            if e in users
        )
        results.append(RecordedCall(row, update, changed, tuple(dict.fromkeys(operator_ids))))
    await session.flush()
    return results


async def _insert(
    session: AsyncSession,
    update: CallUpdated,
    number: CallerNumber,
    users: dict[str, int],
    contact_id: int | None,
    seen_at: datetime,
) -> tuple[Interaction, bool]:
    answered = update.status is Status.ANSWERED
    new = NewInteraction(
        channel=Medium.CALL,
        direction=update.direction,
        status=update.status,
        external_id=update.external_id,
        occurred_at=update.started_at,
        contact_id=contact_id,
        operator_id=_operator(update.operators, update.rang, users),
        answered_at=_not_before(update.answered_at, update.started_at),
        ended_at=update.ended_at if update.ended else None,
        duration_s=update.duration_s if update.ended else None,
        from_address=_addresses(update, number)[0],
        to_address=_addresses(update, number)[1],
        recording_ref=update.recording if answered else None,
        queue=update.queue,
        extra=_new_extra(update, seen_at),
    )
    row, created = await interaction_store.record(session, new)
    if not created:  # another process stored it first: merge as for any stored call
        return row, merge_call(row, update, number, users, seen_at=seen_at)
    return row, True


def merge_call(
    row: Interaction,
    update: CallUpdated,
    number: CallerNumber,
    users: dict[str, int],
    *,
    seen_at: datetime,
) -> bool:
    """Bring a stored call up to ``update``; returns whether anything a person sees changed.

    The rules, for every PBX and every way a snapshot can come (live events,
    a reconnect's channel list, a restart's adoption):

    * facts are kept once proven: the customer's number, the DID, the queue,
      the recording, the click-to-call request; an empty field never erases;
    * who talked and whose phone rang only grow, in the order first seen;
    * an answered call stays answered; a call that has ended is final — a
      later snapshot may only refine the figures of that same end (a late
      CDR), never its status, its end, or its place on the missed list;
    * times move only by rule: ``occurred_at`` only earlier, and only by
      more than a clock's slack (a corrected estimate); ``answered_at`` is
      set once, unless the stored one was an estimate or the PBX's own
      clock corrects it at the end; it is never before ``occurred_at``;
      ``ended_at`` is set once;
    * a recording is linked only to a call where a person talked (Asterisk
      writes a header-only file for a call nobody answered), and its name is
      kept until then.
    """
    before = _visible(row)
    extra = dict(row.extra or {})
    ended = row.ended_at is not None
    if ended and not (update.ended and update.ended_at == row.ended_at):
        return False
    final_refinement = ended
    _merge_lists(extra, "operators", update.operators)
    _merge_lists(extra, "rang", update.rang)
    if not ended:
        _merge_times(row, extra, update)
        if row.status != Status.ANSWERED.value:
            row.status = update.status.value
        if update.ended:
            row.ended_at = update.ended_at
    else:
        if row.status == Status.RINGING.value or (
            update.status is Status.ANSWERED and row.status != Status.ANSWERED.value
        ):
            # The same end, better known: an unresolved end resolved, or a CDR proving a talk.
            row.status = update.status.value
        _merge_times(row, extra, update)
    if update.ended or final_refinement:
        _merge_figures(row, extra, update)
    from_address, to_address = _addresses(update, number)
    row.from_address = row.from_address or from_address
    row.to_address = row.to_address or to_address
    row.queue = row.queue or update.queue
    _merge_facts(extra, update)
    recording = extra.get("recording_file")
    if row.status == Status.ANSWERED.value and recording and not row.recording_ref:
        row.recording_ref = recording
    if row.operator_id is None:
        row.operator_id = _operator(extra["operators"], extra["rang"], users)
    if seen_at.isoformat() > str(extra.get("seen_at", "")):
        extra["seen_at"] = seen_at.isoformat()
    row.extra = extra
    return _visible(row) != before


def _merge_figures(row: Interaction, extra: dict[str, Any], update: CallUpdated) -> None:
    """The ended call's durations; a snapshot that never saw the answer cannot say the talk.

    After a restart the new reader may see only the end of a call whose answer
    the log already holds: its talk then runs from that answer to the end it saw.
    """
    talk = dict(update.operator_talk)
    duration, wait = update.duration_s, update.wait_s
    answered, ended = row.answered_at, row.ended_at
    if update.status is not Status.ANSWERED and row.status == Status.ANSWERED.value:
        duration = 0
        if answered is not None and ended is not None:
            duration = max(0, int((ended - answered).total_seconds()))
        operators = _list(extra, "operators")
        talk = {operators[0]: duration} if len(operators) == 1 else {}
        if len(operators) > 1:
            extra["talk_approximate"] = True
        if answered is not None:
            wait = max(0, int((answered - row.occurred_at).total_seconds()))
    elif _proven_answer_beats_estimate(row, extra, update) and answered and ended:
        # The reader saw the talk only from a restart on; the log proves when it began.
        span = max(0, int((ended - answered).total_seconds()))
        [operator] = update.operators
        duration = min(update.duration_s or 0, span) if update.duration_s else span
        talk = {operator: duration}
        wait = max(0, int((answered - row.occurred_at).total_seconds()))
    row.duration_s = duration
    for key, value in (("total_s", update.total_s), ("wait_s", wait)):
        if value is not None:
            extra[key] = value
    if talk:
        extra["operator_talk"] = talk


def _proven_answer_beats_estimate(
    row: Interaction, extra: dict[str, Any], update: CallUpdated
) -> bool:
    return (
        bool(update.detail.get("answered_at_estimated"))
        and not extra.get("answered_at_estimated")
        and len(update.operators) == 1
    )


def _merge_times(row: Interaction, extra: dict[str, Any], update: CallUpdated) -> None:
    started = update.started_at
    if (row.occurred_at - started).total_seconds() > CLOCK_SLACK_S:
        row.occurred_at = started
    answered = _not_before(update.answered_at, row.occurred_at)
    if answered is None:
        return
    estimated = bool(update.detail.get("answered_at_estimated"))
    from_pbx = update.ended and update.detail.get("times_from") == "pbx"
    if row.answered_at is None or extra.get("answered_at_estimated") or from_pbx:
        if row.answered_at is not None and estimated and not extra.get("answered_at_estimated"):
            return  # an estimate never replaces what the event stream proved
        row.answered_at = answered
        if estimated:
            extra["answered_at_estimated"] = True
        else:
            extra.pop("answered_at_estimated", None)


def _merge_lists(extra: dict[str, Any], key: str, new: Sequence[str]) -> None:
    merged = list(extra.get(key) or [])
    merged += [item for item in new if item not in merged]
    extra[key] = merged


_ONCE = ("number_as_presented", "caller_name", "request_id", "recording_file")


def _merge_facts(extra: dict[str, Any], update: CallUpdated) -> None:
    """Facts a snapshot adds: each key set once; the snapshot's own passing state is not kept."""
    found = {
        "source": update.source,
        "number_as_presented": update.number,
        "caller_name": update.caller_name,
        "request_id": update.request_id,
        "recording_file": update.recording,
    }
    for key, value in found.items():
        if value and not extra.get(key):
            extra[key] = value
    for key, value in update.detail.items():
        if key in _PASSING:
            continue
        if key not in extra or (key in _REFINED and update.ended):
            extra[key] = value


_PASSING = frozenset({"answered_at_estimated", "times_from"})
"""Detail keys about how this one snapshot was made, merged by the rules above instead."""
_REFINED = frozenset({"transfers", "talk_approximate"})
"""Detail keys a later snapshot of the same call knows better."""


def _visible(row: Interaction) -> tuple[Any, ...]:
    return (
        row.status,
        row.occurred_at,
        row.answered_at,
        row.ended_at,
        row.duration_s,
        row.from_address,
        row.to_address,
        row.operator_id,
        row.queue,
        row.recording_ref,
        tuple(_extra_list(row, "operators")),
        tuple(_extra_list(row, "rang")),
        (row.extra or {}).get("operator_talk"),
        (row.extra or {}).get("transfers"),
    )


def _new_extra(update: CallUpdated, seen_at: datetime) -> dict[str, Any]:
    extra: dict[str, Any] = {"operators": list(update.operators), "rang": list(update.rang)}
    if update.ended:
        for key, value in (
            ("total_s", update.total_s),
            ("wait_s", update.wait_s),
            ("operator_talk", dict(update.operator_talk) if update.operator_talk else None),
        ):
            if value is not None:
                extra[key] = value
    if update.detail.get("answered_at_estimated") and update.answered_at is not None:
        extra["answered_at_estimated"] = True
    _merge_facts(extra, update)
    extra["seen_at"] = seen_at.isoformat()
    return extra


def _operator(operators: Sequence[str], rang: Sequence[str], users: dict[str, int]) -> int | None:
    """The user whose extension talked first, or, nobody having talked, whose phone rang first."""
    handled = operators or rang
    return next((users[e] for e in handled if e in users), None)


def _addresses(update: CallUpdated, number: CallerNumber) -> tuple[str, str]:
    """(from, to) as stored: the customer's number and the DID, each on its side."""
    if update.direction is Direction.OUTBOUND:
        return update.did[:320], number.address[:320]
    return number.address[:320], update.did[:320]


def _customer_address(row: Interaction) -> str:
    return row.to_address if row.direction == Direction.OUTBOUND.value else row.from_address


def _extra_list(row: Interaction, key: str) -> list[str]:
    return _list(row.extra or {}, key)


def _list(extra: dict[str, Any], key: str) -> list[str]:
    return [str(item) for item in extra.get(key) or []]


def _latest(update: CallUpdated) -> datetime:
    """The last moment a snapshot shows its call alive (the PBX's clock as the adapter read it)."""
    moments = (update.started_at, update.answered_at, update.ended_at)
    return max(moment for moment in moments if moment is not None)


def _not_before(moment: datetime | None, start: datetime) -> datetime | None:
    return None if moment is None else max(moment, start)


async def _follow_up(session: AsyncSession, row: Interaction, number: CallerNumber) -> None:
    """An ended call opens a missed-call follow-up, or closes the open ones for its number."""
    match_key = number.query.match_key if number.query.searchable else None
    status = Status(row.status)
    if row.direction == Direction.INBOUND.value and status in MISSED_STATUSES:
        await session.flush()
        await store.open_missed(session, row, number=_customer_address(row), match_key=match_key)
    elif status is Status.ANSWERED and match_key is not None:
        await session.flush()
        query = number.query
        # The same rule as identify (phones.decide): a number that names its country
        # answers only for that country's missed calls.
        exact = query.e164 if query.explicit_country else None
        prefix = f"+{query.country_code}" if query.country_code is not None else None
        await store.close_missed_by_call(
            session,
            match_key=match_key,
            before=row.occurred_at,
            call_id=row.id,
            number=exact,
            country_prefix=prefix,
        )


UNSEEN_END_REASON = "ended while the hub was not listening; outcome unknown"


async def calls_ended_unseen(session: AsyncSession, report: CallsInProgress) -> list[CallUpdated]:
    """Final snapshots for this PBX's calls still open in the log but no longer up.

    Each ends where the hub last knew it to be up (its last write or
    heartbeat), never later, with ``approximate_end_s`` saying how long after
    that its end was learned: talk time is never inflated by the hub's own
    downtime. Answered calls keep their operators and talk up to that point;
    calls nobody was seen answering end as missed (inbound: so someone
    calls back) or unanswered (outbound), with the reason. Each goes through
    :func:`record_calls` like any snapshot (one row, follow-ups, feed).
    """
    rows = await store.open_calls(session, prefix=report.prefix, before=report.at)
    beat = await store.last_beat(session, report.prefix)
    return [
        _ended_unseen(row, report, beat)
        for row in rows
        if row.external_id not in report.external_ids
    ]


async def calls_seen(session: AsyncSession, report: CallsInProgress) -> None:
    """A heartbeat: every call of this PBX the log holds open was up at its time.

    One row per PBX, not per call: an adapter sends it only while it follows
    every call of its PBX (after the PBX's own list was read), so the claim
    covers them all; it bounds the end of a call a crash hid.
    """
    await store.beat(session, report.prefix, report.at)


def _ended_unseen(row: Interaction, report: CallsInProgress, beat: datetime | None) -> CallUpdated:
    snapshot = snapshot_of(row, source=report.source)
    last_seen = _last_seen(row, report.at, beat)
    detail = dict(snapshot.detail)
    detail["approximate_end_s"] = max(0, round((report.at - last_seen).total_seconds()))
    talk = 0
    operator_talk: tuple[tuple[str, int], ...] = ()
    answered = row.answered_at
    if row.status == Status.ANSWERED.value and answered is not None:
        status = Status.ANSWERED
        talk = max(0, int((last_seen - answered).total_seconds()))
        if len(snapshot.operators) == 1:
            operator_talk = ((snapshot.operators[0], talk),)
        else:
            detail["talk_approximate"] = True
    else:
        inbound = row.direction == Direction.INBOUND.value
        status = Status.MISSED if inbound else Status.NO_ANSWER
        detail["reason"] = UNSEEN_END_REASON
    total = max(0, int((last_seen - row.occurred_at).total_seconds()))
    return replace(
        snapshot,
        status=status,
        ended=True,
        ended_at=last_seen,
        duration_s=talk,
        total_s=total,
        wait_s=total - talk if answered is not None else total,
        operator_talk=operator_talk,
        detail=detail,
    )


def _last_seen(row: Interaction, limit: datetime, beat: datetime | None) -> datetime:
    """The last moment the hub knew this call was up (never after ``limit``)."""
    moments = [row.occurred_at, row.answered_at, beat]
    seen = (row.extra or {}).get("seen_at")
    if isinstance(seen, str):
        with contextlib.suppress(ValueError):
            moments.append(_aware(datetime.fromisoformat(seen)))
    known = [_aware(moment) for moment in moments if moment is not None]
    return min(max(known), _aware(limit))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def snapshot_of(row: Interaction, *, source: str = "") -> CallUpdated:
    """A stored call as a snapshot: what the live feed shows and a pop restores."""
    extra = row.extra or {}
    inbound = row.direction == Direction.INBOUND.value
    talk = extra.get("operator_talk") or {}
    detail = {k: v for k, v in extra.items() if k not in _STORED_APART}
    return CallUpdated(
        source=str(extra.get("source") or source),
        external_id=row.external_id,
        direction=Direction(row.direction),
        status=Status(row.status),
        ended=row.ended_at is not None,
        started_at=row.occurred_at,
        number=row.from_address if inbound else row.to_address,
        caller_name=str(extra.get("caller_name", "")),
        did=row.to_address if inbound else row.from_address,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        duration_s=row.duration_s,
        total_s=extra.get("total_s"),
        wait_s=extra.get("wait_s"),
        operator_talk=tuple((str(k), int(v)) for k, v in talk.items()),
        operators=tuple(_extra_list(row, "operators")),
        rang=tuple(_extra_list(row, "rang")),
        queue=row.queue,
        recording=row.recording_ref,
        request_id=extra.get("request_id"),
        detail=detail,
    )


_STORED_APART = frozenset(
    {
        "source",
        "operators",
        "rang",
        "caller_name",
        "request_id",
        "operator_talk",
        "total_s",
        "wait_s",
        "recording_file",
        "number_as_presented",
        "seen_at",
        "answered_at_estimated",
    }
)
"""Keys of ``Interaction.extra`` that :func:`snapshot_of` reads into a snapshot's own fields."""


async def _contact_for(
    session: AsyncSession, number: CallerNumber, name: str, create: bool
) -> int | None:
    found = await contact_for(
        session, number.presented, region=number.region, name=name, create=create
    )
    return found.contact_id
