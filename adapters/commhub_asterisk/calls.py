"""One call as the tracker holds it: its legs, who rang, who talked and when, and its verdict.

A call is everything that shares Asterisk's ``Linkedid``. Its outcome is
decided from the call's own events (who was connected to whom), not from
CDRs: a call makes several ``Cdr`` events that disagree, and each leg's
Disposition describes that leg only.

Who talked is kept as *talks*: one per stretch of time an operator's leg and
the customer's leg were connected (answered to each other, or in one bridge),
so a transfer gives one talk per operator in order, and an IVR greeting or a
queue before the answer is waiting, not talk. Times come from the hub's
clock; the PBX's CDRs confirm them, and replace them where the hub's clock
cannot know (a call first seen after a reconnect, or a stream read faster
than it happened).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from commhub.channels import CallUpdated
from commhub.domain.interactions import Direction, Status
from commhub_asterisk.dialplan import Role

CLOCK_SLACK_S = 2
"""Our clock is trusted unless it disagrees with the PBX's CDRs by more than this."""

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


def whole_seconds(seconds: float) -> int:
    """Seconds as Asterisk counts them in CDRs: whole seconds begun are not counted
    (cdr.conf's ``initiatedseconds = no``, the default), so our figures match the PBX's."""
    return max(0, int(seconds + 1e-6))


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
    bridge: str = ""


@dataclass(slots=True, eq=False)
class Talk:
    """An operator connected with the customer, from ``start`` to ``end``.

    ``start`` is ``None`` when the connection began while nobody listened
    (seen first in a reconnect's channel list, or only in a CDR).
    """

    extension: str
    customer: str
    """The customer's leg (Uniqueid)."""
    operator: str
    """The operator's leg (Uniqueid), or ``transfer:<ext>`` for a leg sent to an extension."""
    start: datetime | None
    end: datetime | None = None
    seen: datetime | None = None
    """When we first knew of a talk whose ``start`` is unknown."""

    def seconds(self, until: datetime, *, at_least: bool = False) -> float | None:
        """Its length; with an unknown start ``None``, or (``at_least``) what we saw of it."""
        start = self.start if self.start is not None or not at_least else self.seen
        if start is None:
            return 0.0 if at_least else None
        return max(0.0, ((self.end or until) - start).total_seconds())


@dataclass(frozen=True, slots=True)
class CdrRecord:
    """What one ``Cdr`` event says: which legs, answered or not, for how long."""

    channel: str
    """The Uniqueid of the CDR's channel."""
    destination: str
    """The name of its DestinationChannel, empty when it had none."""
    answered: bool
    billable: int
    duration: int


@dataclass(frozen=True, slots=True)
class Durations:
    """A finished call's times: see :class:`~commhub.channels.CallUpdated`."""

    started_at: datetime
    answered_at: datetime | None
    total_s: int
    wait_s: int
    talk: tuple[tuple[str, int], ...]
    from_pbx_clock: bool
    answered_at_estimated: bool


@dataclass(slots=True, eq=False)
class Call:
    """Everything known about one Linkedid so far."""

    linkedid: str
    started_at: datetime
    legs: dict[str, Leg] = field(default_factory=dict)
    trunks: list[Leg] = field(default_factory=list)
    """The legs on the customer's side, in the order they appeared."""
    live: int = 0
    origin: Leg | None = None
    adopted: bool = False
    """First seen in a reconnect's channel list: its start comes from the PBX's Duration."""
    dialled_number: str = ""
    did: str = ""
    rang: list[str] = field(default_factory=list)
    talks: list[Talk] = field(default_factory=list)
    transfers: list[str] = field(default_factory=list)
    ended_at: datetime | None = None
    approximate_end_s: int | None = None
    """Set when the end was inferred: seconds between the last sign of life and the news."""
    queue: str | None = None
    abandoned: bool = False
    dial_status: str = ""
    recording: str | None = None
    request_id: str | None = None
    cdr_deadline: datetime | None = None
    finalized: bool = False
    fingerprint: tuple[Any, ...] | None = None
    """What the last snapshot sent showed; ``None`` until one was sent."""
    state: tuple[Any, ...] | None = None
    """:meth:`state_key` when a snapshot was last considered."""
    agent_talk: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Queue agents' (extension, talk) by their leg, from ``AgentComplete`` ``TalkTime``."""
    cdrs: dict[str, CdrRecord] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    _operators: tuple[str, ...] = ()

    def state_key(self) -> tuple[Any, ...]:
        """Everything a snapshot is made from, cheaply: unchanged means no snapshot to build.

        About 80 events a call, most of them changing nothing a person sees: comparing
        this is far cheaper than building the snapshot to compare its fingerprint.
        """
        talks = self.talks
        direction = self.direction()
        key: tuple[Any, ...] = (
            direction,
            self.customer(direction) if direction is not None else None,
            self.finalized,
            self.started_at,
            self.ended_at,
            self.approximate_end_s,
            len(talks),
            talks[0].start if talks else None,
            len(self.rang),
            len(self.transfers),
            self.did,
            self.queue,
            self.abandoned,
            self.dial_status if self.ended_at is not None else None,
            self.recording,
            self.request_id,
            len(self.detail),
        )
        if self.finalized:
            ends = tuple(talk.end for talk in talks)
            key += (len(self.cdrs), len(self.agent_talk), tuple(self.detail.items()), ends)
        return key

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    @property
    def answered(self) -> bool:
        return bool(self.talks)

    def add_leg(self, leg: Leg) -> None:
        self.legs[leg.uniqueid] = leg
        if leg.role is Role.TRUNK:
            self.trunks.append(leg)

    def trunk_legs(self) -> list[Leg]:
        return self.trunks

    def add_talk(self, talk: Talk) -> None:
        self.talks.append(talk)
        if talk.extension not in self._operators:
            self._operators += (talk.extension,)

    def drop_talks(self, operator: str) -> None:
        """Forget the open talks of ``operator`` (a guess a real answer replaced)."""
        self.talks = [t for t in self.talks if not (t.operator == operator and t.end is None)]
        self._operators = tuple(dict.fromkeys(talk.extension for talk in self.talks))

    def operators(self) -> tuple[str, ...]:
        """Who talked with the customer, first one first, each once."""
        return self._operators

    def talking(self, customer: str, operator: str) -> Talk | None:
        for talk in reversed(self.talks):
            if talk.customer == customer and talk.operator == operator and talk.end is None:
                return talk
        return None

    def direction(self) -> Direction | None:
        """Inbound when the call began on a trunk leg, outbound when an operator dialled out.

        A call without any trunk leg is internal and never reaches a card.
        """
        trunks = self.trunk_legs()
        if not trunks:
            # Our own click-to-call rings the operator's phone first: already a call out,
            # stored from its first ring so that a crash cannot lose which request it is.
            return Direction.OUTBOUND if self.request_id else None
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

    def status(self, direction: Direction) -> Status:
        if self.answered:
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
        ended_at = self.ended_at
        durations = self.durations(ended_at) if self.finalized and ended_at else None
        detail = dict(self.detail)
        if self.ended and status is not Status.ANSWERED:
            reason = _MISSED_REASON.get(self.dial_status)
            if reason:
                detail["reason"] = reason
        if self.transfers:
            detail["transfers"] = list(self.transfers)
        if self.approximate_end_s is not None:
            detail["approximate_end_s"] = self.approximate_end_s
        started_at = self.started_at
        answered_at = self.talks[0].start if self.talks else None
        times: dict[str, Any] = {}
        if self.finalized and durations is not None:
            started_at, answered_at = durations.started_at, durations.answered_at
            talk = durations.talk
            times = {
                "ended_at": self.ended_at,
                "duration_s": sum(seconds for _, seconds in talk),
                "total_s": durations.total_s,
                "wait_s": durations.wait_s,
                "operator_talk": talk,
            }
            if durations.from_pbx_clock:
                detail["times_from"] = "pbx"
            if durations.answered_at_estimated:
                detail["answered_at_estimated"] = True
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
            operators=self.operators(),
            rang=tuple(self.rang),
            queue=self.queue,
            recording=self.recording,
            request_id=self.request_id,
            detail=detail,
            **times,
        )

    # --- times ---------------------------------------------------------------------------

    def durations(self, ended_at: datetime) -> Durations:
        """Total, waiting and each operator's talk: our clock, or the PBX's where ours cannot know.

        Our clock is trusted unless it measured the call shorter than the PBX
        did (its longest CDR ``Duration``): a stream read all at once, or
        replayed faster than it happened, fails that check and the CDRs give
        every figure. An operator whose talk began while nobody
        listened takes it from the CDRs (``AgentComplete`` first).
        """
        cdr_total = max((c.duration for c in self.cdrs.values()), default=None)
        clock_total = (ended_at - self.started_at).total_seconds()
        # A clock that saw less time pass than the PBX counted was not watching (a stream read
        # at once); one that saw more is normal (a CDR may cover only part of the call).
        trusted = cdr_total is None or clock_total >= cdr_total - CLOCK_SLACK_S
        started_at = self.started_at if trusted else ended_at - timedelta(seconds=cdr_total or 0)
        talk: list[tuple[str, int]] = []
        for extension in self.operators():
            talk.append((extension, self._talk_seconds(extension, ended_at, trusted=trusted)))
        first = self.talks[0] if self.talks else None
        answered_at: datetime | None = None
        estimated = False
        if first is not None:
            if trusted and first.start is not None:
                answered_at = first.start
            else:
                answered_at = self._answer_from_talk(ended_at, talk, trusted=trusted)
                estimated = trusted
            answered_at = min(max(answered_at, started_at), ended_at)
        total = whole_seconds((ended_at - started_at).total_seconds())
        # Whole seconds like the PBX's own figures, so that waiting and talk add up to the total.
        wait = (
            total
            if answered_at is None
            else total - whole_seconds((ended_at - answered_at).total_seconds())
        )
        return Durations(
            started_at=started_at,
            answered_at=answered_at,
            total_s=total,
            wait_s=max(0, wait),
            talk=tuple(talk),
            from_pbx_clock=not trusted,
            answered_at_estimated=estimated,
        )

    def _talk_seconds(self, extension: str, ended_at: datetime, *, trusted: bool) -> int:
        talks = [talk for talk in self.talks if talk.extension == extension]
        measured = [talk.seconds(ended_at) for talk in talks]
        if trusted and all(seconds is not None for seconds in measured):
            return whole_seconds(sum(seconds or 0.0 for seconds in measured))
        agents = [seconds for ext, seconds in self.agent_talk.values() if ext == extension]
        confirmed = sum(agents) if agents else self._cdr_talk(extension)
        if confirmed is not None:
            return confirmed
        if any(seconds is None for seconds in measured):
            # Began while nobody listened and no CDR says when: what we saw, at least.
            self.detail["talk_approximate"] = True
            measured = [talk.seconds(ended_at, at_least=True) for talk in talks]
        return whole_seconds(sum(seconds or 0.0 for seconds in measured))

    def _cdr_talk(self, extension: str) -> int | None:
        """The shortest answered CDR that spans this operator's talk with the customer.

        Every answered CDR between an operator's leg and the customer's leg,
        of the operator's own leg, or of the customer's own leg, lasts at
        least as long as that talk; the tightest is the best figure the PBX
        gives (the caller's legs also count an IVR greeting or a queue, the
        operator's own leg of a Local pair counts only the answer onwards).
        """
        own = {uid for uid, leg in self.legs.items() if leg.extension == extension}
        own_names = {self.legs[uid].channel for uid in own}
        trunks = {uid for uid, leg in self.legs.items() if leg.role is Role.TRUNK}
        trunk_names = {self.legs[uid].channel for uid in trunks}
        spans = [
            cdr.billable
            for cdr in self.cdrs.values()
            if cdr.answered
            and (
                (cdr.channel in own and (not cdr.destination or cdr.destination in trunk_names))
                or (cdr.channel in trunks and (not cdr.destination or cdr.destination in own_names))
            )
        ]
        return min(spans) if spans else None

    def _answer_from_talk(
        self, ended_at: datetime, talk: list[tuple[str, int]], *, trusted: bool
    ) -> datetime:
        """When the first operator answered, worked back from the talk the PBX measured."""
        first = self.talks[0]
        if len(talk) == 1 or not trusted:
            until = first.end if trusted and first.end is not None else ended_at
            seconds = talk[0][1] if len(talk) == 1 else self._customer_answered_s(talk)
            return until - timedelta(seconds=seconds)
        return (first.end or ended_at) - timedelta(seconds=talk[0][1])

    def _customer_answered_s(self, talk: list[tuple[str, int]]) -> int:
        """How long the customer's own leg was answered (several operators talked)."""
        trunks = {uid for uid, leg in self.legs.items() if leg.role is Role.TRUNK}
        own = [c.billable for c in self.cdrs.values() if c.answered and c.channel in trunks]
        return max(own, default=sum(seconds for _, seconds in talk))
