"""One call as the tracker holds it: its legs, who rang, who talked, and its verdict.

A call is everything that shares Asterisk's ``Linkedid``. Its outcome is
decided from the call's own events (who was connected to whom), not from
CDRs: a call makes several ``Cdr`` events that disagree, and each leg's
Disposition describes that leg only. CDRs are used to confirm times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from commhub.channels import CallUpdated
from commhub.domain.interactions import Direction, Status
from commhub_asterisk.dialplan import Role

CLOCK_SLACK_S = 2
"""Our clock wins over a CDR's second-resolution times unless they differ by more than this."""

_OUTBOUND_STATUS = {
    "BUSY": Status.BUSY,
    "NOANSWER": Status.NO_ANSWER,
    "CANCEL": Status.NO_ANSWER,
}
_MISSED_REASON = {
    "NOANSWER": "no answer",
    "BUSY": "busy",
    "CANCEL": "caller hung up while ringing",
    "CHANUNAVAIL": "operator's phone unavailable",
    "CONGESTION": "congestion",
}


@dataclass(slots=True, eq=False)
class Leg:
    """One channel of a call."""

    uniqueid: str
    call: Call
    channel: str
    role: Role
    extension: str | None
    caller_num: str = ""
    caller_name: str = ""
    exten: str = ""
    up_at: datetime | None = None
    gone: bool = False
    dialled: bool = False
    cdr_count: int = 0
    cdr_billable: int = 0
    cdr_duration: int = 0
    cdrs_seen: set[tuple[str, ...]] = field(default_factory=set)


@dataclass(slots=True, eq=False)
class Call:
    """Everything known about one Linkedid so far."""

    linkedid: str
    started_at: datetime
    legs: dict[str, Leg] = field(default_factory=dict)
    live: int = 0
    origin: Leg | None = None
    dialled_number: str = ""
    did: str = ""
    rang: list[str] = field(default_factory=list)
    operators: list[str] = field(default_factory=list)
    connected_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    queue: str | None = None
    abandoned: bool = False
    dial_status: str = ""
    recording: str | None = None
    request_id: str | None = None
    cdr_deadline: datetime | None = None
    finalized: bool = False
    fingerprint: tuple[Any, ...] | None = None
    agent_talk: dict[str, int] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def trunk_legs(self) -> list[Leg]:
        return [leg for leg in self.legs.values() if leg.role is Role.TRUNK]

    def direction(self) -> Direction | None:
        """Inbound when the call began on a trunk leg, outbound when an operator dialled out.

        A call without any trunk leg is internal and never reaches a card.
        """
        trunks = self.trunk_legs()
        if not trunks:
            return None
        origin = self.origin
        if origin is not None and origin.role is Role.TRUNK:
            return Direction.INBOUND
        if origin is not None and origin.role is Role.OPERATOR:
            return Direction.OUTBOUND
        return Direction.OUTBOUND if trunks[0].dialled else Direction.INBOUND

    def customer(self, direction: Direction) -> tuple[str, str]:
        """The customer's number and name as presented."""
        if direction is Direction.OUTBOUND:
            if self.dialled_number:
                return self.dialled_number, ""
            trunks = self.trunk_legs()
            return (trunks[0].caller_num if trunks else ""), ""
        origin = self.origin
        if origin is not None and origin.role is Role.TRUNK and origin.caller_num:
            return origin.caller_num, origin.caller_name
        for leg in self.trunk_legs():
            if leg.caller_num:
                return leg.caller_num, leg.caller_name
        return "", ""

    def cdr_seconds(self) -> tuple[int, int] | None:
        """(billable, total) seconds of the customer's leg from its CDRs, if any arrived.

        A leg's CDRs are summed (a transfer splits one leg into several);
        of the trunk legs (a Local pair has two) the largest counts.
        """
        confirmed = [leg for leg in self.trunk_legs() if leg.cdr_count]
        if not confirmed:
            return None
        billable = max(leg.cdr_billable for leg in confirmed)
        total = max(leg.cdr_duration for leg in self.legs.values())
        return billable, total

    def status(self, direction: Direction) -> Status:
        if self.connected_at is not None:
            return Status.ANSWERED
        if not self.ended:
            return Status.RINGING
        if direction is Direction.OUTBOUND:
            return _OUTBOUND_STATUS.get(self.dial_status, Status.FAILED)
        if self.abandoned or self.queue is not None:
            return Status.ABANDONED
        return Status.MISSED

    def snapshot(self, *, source: str, pbx: str, region: str) -> CallUpdated | None:
        """The call as the core should store it now; ``None`` for an internal call."""
        direction = self.direction()
        if direction is None:
            return None
        number, name = self.customer(direction)
        status = self.status(direction)
        started_at, answered_at, duration = self._times()
        detail = dict(self.detail)
        if self.ended and status is not Status.ANSWERED:
            reason = _MISSED_REASON.get(self.dial_status)
            if reason:
                detail["reason"] = reason
        return CallUpdated(
            source=source,
            external_id=f"{pbx}:{self.linkedid}",
            direction=direction,
            status=status,
            ended=self.finalized,
            started_at=started_at,
            number=number,
            caller_name=name,
            region=region,
            did=self.did,
            answered_at=answered_at,
            ended_at=self.ended_at if self.finalized else None,
            duration_s=duration,
            operators=tuple(self.operators),
            rang=tuple(self.rang),
            queue=self.queue,
            recording=self.recording,
            request_id=self.request_id,
            detail=detail,
        )

    def _times(self) -> tuple[datetime, datetime | None, int | None]:
        """Start, answer and talk seconds: our clock, corrected by the CDR when it disagrees."""
        started_at, answered_at = self.started_at, self.answered_at
        if self.ended_at is None:
            return started_at, answered_at, None
        confirmed = self.cdr_seconds()
        if confirmed is not None:
            cdr_start = self.ended_at - timedelta(seconds=confirmed[1])
            if (started_at - cdr_start).total_seconds() > CLOCK_SLACK_S:
                started_at = cdr_start
        if self.connected_at is None:
            return started_at, None, 0
        if answered_at is None:
            answered_at = self.connected_at
        talk = max(0, round((self.ended_at - answered_at).total_seconds()))
        if confirmed is not None:
            billable = confirmed[0]
            if abs(billable - talk) > CLOCK_SLACK_S:
                answered_at = self.ended_at - timedelta(seconds=billable)
            talk = billable
        return started_at, answered_at, talk
