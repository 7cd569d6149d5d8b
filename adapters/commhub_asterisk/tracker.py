"""The call tracker: AMI events in, call snapshots and screen-pop offers out.

Pure logic with the clock passed in, so the same code runs on a live PBX, a
replayed recording and a benchmark. It never raises on odd input: an event
that names an unknown channel adopts it, a repeated one changes nothing.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from commhub.channels import CallOffered, CallsInProgress, CallUpdated, InboundEvent
from commhub.domain.interactions import Direction, Status
from commhub_asterisk.calls import Call, Leg
from commhub_asterisk.dialplan import Dialplan, Role, presented
from commhub_asterisk.wire import Headers

log = logging.getLogger(__name__)

FINISHED_LEGS_KEPT = 50_000
"""Legs of ended calls remembered, so late CDRs still find their call and a replay adds nothing."""

Handler = Callable[[Headers, datetime], None]


class CallTracker:
    """Follows every call on one PBX by Linkedid and says what changed."""

    def __init__(
        self,
        *,
        source: str,
        pbx: str,
        dialplan: Dialplan,
        cdr: str = "auto",
        cdr_wait_s: float = 3.0,
    ) -> None:
        self.source = source
        self.pbx = pbx
        self.dialplan = dialplan
        self.cdr_mode = cdr
        self.cdr_wait = timedelta(seconds=cdr_wait_s)
        self.cdr_seen = False
        self.calls: dict[str, Call] = {}
        self.legs: dict[str, Leg] = {}
        self.finished: OrderedDict[str, Leg] = OrderedDict()
        self.bridges: dict[str, set[str]] = {}
        self.originates: dict[str, tuple[str, str, str]] = {}
        self._out: list[InboundEvent] = []
        self._handlers: dict[str, Handler] = {
            "Newchannel": self._newchannel,
            "NewCallerid": self._newcallerid,
            "Newstate": self._newstate,
            "Rename": self._rename,
            "DialBegin": self._dialbegin,
            "DialEnd": self._dialend,
            "AgentCalled": self._agentcalled,
            "AgentConnect": self._agentconnect,
            "AgentComplete": self._agentcomplete,
            "QueueCallerJoin": self._queuejoin,
            "QueueCallerAbandon": self._queueabandon,
            "BridgeEnter": self._bridgeenter,
            "BridgeLeave": self._bridgeleave,
            "Hangup": self._hangup,
            "VarSet": self._varset,
            "Cdr": self._cdr,
            "OriginateResponse": self._originateresponse,
        }

    # --- the three ways in ------------------------------------------------------

    def handle(self, name: str, headers: Headers, now: datetime) -> list[InboundEvent]:
        """Apply one event; returns the snapshots and offers it caused."""
        handler = self._handlers.get(name)
        if handler is None:
            return []
        try:
            handler(headers, now)
        except (KeyError, ValueError) as exc:
            log.warning("skipped a %s event the tracker could not read: %s", name, exc)
        except Exception:
            # A tracker bug on odd input costs this one event, never the link.
            log.exception("skipped a %s event the tracker failed on: %r", name, headers)
        return self._drain()

    def sweep(self, now: datetime) -> list[InboundEvent]:
        """Close the calls whose wait for a CDR is over."""
        for call in list(self.calls.values()):
            if call.cdr_deadline is not None and call.cdr_deadline <= now:
                self._finalize(call)
        return self._drain()

    def reconcile(
        self, channels: Iterable[Headers], now: datetime, *, lost_at: datetime | None
    ) -> list[InboundEvent]:
        """After a reconnect: follow on the calls still up, close those that ended meanwhile.

        ``channels`` are the PBX's ``CoreShowChannel`` events. A call that
        ended while the link was down has lost its hang-up and CDRs, so it is
        closed at the reconnect time and marked approximate.
        """
        live: dict[str, Headers] = {}
        for channel in channels:
            uniqueid = channel.get("Uniqueid", "")
            if uniqueid:
                live[uniqueid] = channel
        outage = None if lost_at is None else max(0, round((now - lost_at).total_seconds()))
        for call in list(self.calls.values()):
            for leg in list(call.legs.values()):
                if not leg.gone and leg.uniqueid not in live:
                    call.detail["approximate_end_s"] = outage
                    self._leg_gone(leg, now, cdr_expected=False)
        bridged: dict[str, list[Leg]] = {}
        for uniqueid, channel in live.items():
            known = self.legs.get(uniqueid) or self._adopt(channel, now)
            if known is None:
                continue
            bridge = channel.get("BridgeId", "")
            if bridge:
                bridged.setdefault(bridge, []).append(known)
                self.bridges.setdefault(bridge, set()).add(uniqueid)
        for members in bridged.values():
            self._connect_members(members, now)
        up = frozenset(f"{self.pbx}:{call.linkedid}" for call in self.calls.values())
        self._out.append(
            CallsInProgress(source=self.source, prefix=f"{self.pbx}:", external_ids=up, at=now)
        )
        return self._drain()

    def expect_originate(
        self, action_id: str, request_id: str, extension: str, number: str
    ) -> None:
        """Remember an Originate we sent, so its failure lands on the card as a failed call."""
        self.originates[action_id] = (request_id, extension, number)

    @property
    def active_calls(self) -> int:
        return len(self.calls)

    # --- legs and calls ------------------------------------------------------------

    def _new_leg(
        self,
        uniqueid: str,
        linkedid: str,
        channel: str,
        context: str,
        now: datetime,
        started_at: datetime | None = None,
    ) -> Leg | None:
        if uniqueid in self.legs:
            return self.legs[uniqueid]
        if uniqueid in self.finished or not uniqueid:
            return None
        call = self.calls.get(linkedid)
        if call is None:
            call = self.calls[linkedid] = Call(linkedid=linkedid, started_at=started_at or now)
        role, extension = self.dialplan.classify(channel, context)
        leg = Leg(uniqueid=uniqueid, call=call, channel=channel, role=role, extension=extension)
        call.legs[uniqueid] = leg
        call.live += 1
        self.legs[uniqueid] = leg
        if uniqueid == linkedid:
            call.origin = leg
        return leg

    def _leg(self, headers: Headers, now: datetime, prefix: str = "") -> Leg | None:
        """The leg an event names (``prefix="Dest"``: the dialled side); adopts a stranger."""
        uniqueid = headers.get(prefix + "Uniqueid", "")
        leg = self.legs.get(uniqueid)
        if leg is not None or not uniqueid or uniqueid in self.finished:
            return leg
        return self._new_leg(
            uniqueid,
            headers.get(prefix + "Linkedid") or uniqueid,
            headers.get(prefix + "Channel", ""),
            headers.get(prefix + "Context", ""),
            now,
        )

    def _adopt(self, channel: Headers, now: datetime) -> Leg | None:
        """A channel first seen in CoreShowChannels (the hub restarted or missed its start)."""
        age = _seconds(channel.get("Duration", ""))
        leg = self._new_leg(
            channel.get("Uniqueid", ""),
            channel.get("Linkedid") or channel.get("Uniqueid", ""),
            channel.get("Channel", ""),
            channel.get("Context", ""),
            now,
            started_at=now - timedelta(seconds=age),
        )
        if leg is None:
            return None
        leg.caller_num = presented(channel.get("CallerIDNum", ""))
        leg.caller_name = presented(channel.get("CallerIDName", ""))
        leg.exten = channel.get("Extension", "")
        if channel.get("ChannelState") == "6":
            leg.up_at = leg.call.started_at
        leg.call.detail["reconciled"] = True
        if leg.role is Role.TRUNK and leg.call.origin is None and leg.call.connected_at is None:
            leg.call.did = leg.call.did or leg.exten
        return leg

    def _leg_gone(self, leg: Leg, now: datetime, *, cdr_expected: bool = True) -> None:
        if leg.gone:
            return
        leg.gone = True
        call = leg.call
        call.live -= 1
        if leg.role is Role.TRUNK and call.connected_at is None and call.ended_at is None:
            if call.dial_status in ("", "RINGING") and call.rang:
                call.dial_status = "CANCEL"
        if call.live > 0:
            return
        call.ended_at = now
        if cdr_expected and self._waits_for_cdr(call):
            call.cdr_deadline = now + self.cdr_wait
        else:
            self._finalize(call)

    def _waits_for_cdr(self, call: Call) -> bool:
        if self.cdr_mode == "off" or (self.cdr_mode == "auto" and not self.cdr_seen):
            return False
        return call.cdr_seconds() is None and call.direction() is not None

    def _finalize(self, call: Call) -> None:
        call.cdr_deadline = None
        call.finalized = True
        self._emit(call)
        self.calls.pop(call.linkedid, None)
        for uniqueid, leg in call.legs.items():
            self.legs.pop(uniqueid, None)
            self.finished[uniqueid] = leg
        while len(self.finished) > FINISHED_LEGS_KEPT:
            self.finished.popitem(last=False)

    def _emit(self, call: Call) -> None:
        """Queue the call's snapshot if anything a person sees has changed."""
        snapshot = call.snapshot(source=self.source, pbx=self.pbx, region=self.dialplan.region)
        if snapshot is None:
            return
        fingerprint = _fingerprint(snapshot)
        if fingerprint != call.fingerprint:
            call.fingerprint = fingerprint
            self._out.append(snapshot)

    def _offer(self, call: Call, leg: Leg, now: datetime) -> None:
        extension = leg.extension
        if extension is None or extension in call.rang:
            return
        call.rang.append(extension)
        if call.direction() is not Direction.INBOUND:
            return
        self._emit(call)
        snapshot = call.snapshot(source=self.source, pbx=self.pbx, region=self.dialplan.region)
        if snapshot is not None:
            self._out.append(CallOffered(call=snapshot, extension=extension))

    def _connect(self, call: Call, operator: Leg, now: datetime) -> None:
        """The customer and an operator are talking (first answer, or a transfer)."""
        extension = operator.extension
        if extension and extension not in call.operators:
            call.operators.append(extension)
        if call.connected_at is None:
            call.connected_at = now
            ups = [leg.up_at for leg in call.trunk_legs() if leg.up_at is not None]
            call.answered_at = min(ups) if ups else now
        self._emit(call)

    def _connect_members(self, members: Iterable[Leg], now: datetime) -> None:
        trunks = [leg for leg in members if leg.role is Role.TRUNK and not leg.gone]
        operators = [leg for leg in members if leg.role is Role.OPERATOR and not leg.gone]
        for trunk in trunks:
            for operator in operators:
                self._connect(trunk.call, operator, now)

    def _drain(self) -> list[InboundEvent]:
        out, self._out = self._out, []
        return out

    # --- event handlers --------------------------------------------------------------

    def _newchannel(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h, now)
        if leg is None:
            return
        leg.caller_num = presented(h.get("CallerIDNum", ""))
        leg.caller_name = presented(h.get("CallerIDName", ""))
        leg.exten = h.get("Exten", "")
        if leg is leg.call.origin and leg.role is Role.TRUNK and not leg.call.did:
            leg.call.did = leg.exten

    def _newcallerid(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h, now)
        if leg is None:
            return
        leg.caller_num = presented(h.get("CallerIDNum", "")) or leg.caller_num
        leg.caller_name = presented(h.get("CallerIDName", "")) or leg.caller_name

    def _newstate(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h, now)
        if leg is not None and h.get("ChannelState") == "6" and leg.up_at is None:
            leg.up_at = now

    def _rename(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h, now)
        if leg is not None:
            leg.channel = h.get("Newname", leg.channel)

    def _dialbegin(self, h: Headers, now: datetime) -> None:
        dest = self._leg(h, now, "Dest")
        if dest is None:
            return
        source = self._leg(h, now)
        if dest.role is Role.OPERATOR:
            self._offer(dest.call, dest, now)
        elif dest.role is Role.TRUNK and (source is None or source.role is not Role.TRUNK):
            dest.dialled = True
            call = dest.call
            number = self.dialplan.dialled_number(h.get("DialString", ""))
            if not any(ch.isdigit() for ch in number):
                number = self.dialplan.strip_prefix(presented(h.get("DestCallerIDNum", "")))
            if number and not call.dialled_number:
                call.dialled_number = number
            caller = source.extension if source is not None else None
            if caller is not None and caller not in call.rang:
                # The phone that dialled out: the call is its operator's even unanswered.
                call.rang.append(caller)
            self._emit(call)

    def _dialend(self, h: Headers, now: datetime) -> None:
        dest = self._leg(h, now, "Dest")
        source = self._leg(h, now)
        if dest is None:
            return
        status = h.get("DialStatus", "")
        if source is not None and status == "ANSWER":
            roles = {source.role, dest.role}
            if roles == {Role.TRUNK, Role.OPERATOR}:
                trunk, operator = (source, dest) if source.role is Role.TRUNK else (dest, source)
                self._connect(trunk.call, operator, now)
                return
        call = (source or dest).call
        if call.connected_at is None and status and status != "ANSWER":
            if dest.role is Role.OPERATOR or (dest.role is Role.TRUNK and dest.dialled):
                call.dial_status = status

    def _agentcalled(self, h: Headers, now: datetime) -> None:
        dest = self._leg(h, now, "Dest")
        if dest is None:
            return
        source = self._leg(h, now)
        if source is not None and h.get("Queue"):
            source.call.queue = h["Queue"]
        if dest.role is Role.OPERATOR:
            self._offer(source.call if source is not None else dest.call, dest, now)

    def _agentconnect(self, h: Headers, now: datetime) -> None:
        source = self._leg(h, now)
        dest = self._leg(h, now, "Dest")
        if source is None or dest is None:
            return
        call = source.call
        call.queue = h.get("Queue") or call.queue
        if h.get("HoldTime", "").isdigit():
            call.detail["queue_wait_s"] = int(h["HoldTime"])
        if dest.role is Role.OPERATOR:
            self._connect(call, dest, now)

    def _agentcomplete(self, h: Headers, now: datetime) -> None:
        source = self._leg(h, now)
        if source is not None and h.get("TalkTime", "").isdigit():
            call = source.call
            call.agent_talk[h.get("DestUniqueid", "")] = int(h["TalkTime"])
            call.detail["agent_talk_s"] = sum(call.agent_talk.values())

    def _queuejoin(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h, now)
        if leg is not None:
            leg.call.queue = h.get("Queue") or leg.call.queue
            self._emit(leg.call)

    def _queueabandon(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h, now)
        if leg is not None:
            leg.call.abandoned = True

    def _bridgeenter(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h, now)
        bridge = h.get("BridgeUniqueid", "")
        if leg is None or not bridge:
            return
        members = self.bridges.setdefault(bridge, set())
        members.add(leg.uniqueid)
        self._connect_members((self.legs[u] for u in members if u in self.legs), now)

    def _bridgeleave(self, h: Headers, now: datetime) -> None:
        bridge = h.get("BridgeUniqueid", "")
        members = self.bridges.get(bridge)
        if members is None:
            return
        members.discard(h.get("Uniqueid", ""))
        if not members:
            del self.bridges[bridge]

    def _hangup(self, h: Headers, now: datetime) -> None:
        leg = self.legs.get(h.get("Uniqueid", ""))
        if leg is None:
            return
        self._leg_gone(leg, now)

    def _varset(self, h: Headers, now: datetime) -> None:
        leg = self.legs.get(h.get("Uniqueid", ""))
        if leg is None:
            return
        variable = h.get("Variable", "").lstrip("_")
        value = h.get("Value", "")
        call = leg.call
        if variable == "MIXMONITOR_FILENAME" and value:
            call.recording = value
        elif variable == "COMMHUB_CALL_ID" and value:
            call.request_id = value
        elif variable == "COMMHUB_DID" and value:
            call.did = value

    def _cdr(self, h: Headers, now: datetime) -> None:
        self.cdr_seen = True
        uniqueid = h.get("UniqueID") or h.get("Uniqueid", "")
        leg = self.legs.get(uniqueid) or self.finished.get(uniqueid)
        if leg is None:
            return
        key = tuple(h.get(k, "") for k in _CDR_IDENTITY)
        if key in leg.cdrs_seen:
            return
        leg.cdrs_seen.add(key)
        leg.cdr_count += 1
        leg.cdr_billable += _int(h.get("BillableSeconds", ""))
        leg.cdr_duration = max(leg.cdr_duration, _int(h.get("Duration", "")))
        call = leg.call
        if call.finalized:
            self._emit(call)
        elif call.cdr_deadline is not None and leg.role is Role.TRUNK:
            self._finalize(call)

    def _originateresponse(self, h: Headers, now: datetime) -> None:
        expected = self.originates.pop(h.get("ActionID", ""), None)
        if expected is None or h.get("Response") != "Failure":
            return
        request_id, extension, number = expected
        reason = _ORIGINATE_REASONS.get(h.get("Reason", ""), "the PBX could not place the call")
        self._out.append(
            CallUpdated(
                source=self.source,
                external_id=f"{self.pbx}:{request_id}",
                direction=Direction.OUTBOUND,
                status=Status.FAILED,
                ended=True,
                started_at=now,
                number=number,
                region=self.dialplan.region,
                ended_at=now,
                duration_s=0,
                rang=(extension,),
                request_id=request_id,
                detail={"reason": reason},
            )
        )


_CDR_IDENTITY = ("StartTime", "AnswerTime", "EndTime", "Disposition", "LastApplication", "Duration")
"""What tells one CDR of a leg from another (a repeated event is the same CDR)."""

_ORIGINATE_REASONS = {
    "0": "the operator's phone could not be reached",
    "1": "the operator's phone hung up",
    "3": "the operator did not answer",
    "5": "the operator's phone was busy",
    "8": "the PBX reported congestion",
}
"""OriginateResponse ``Reason``: Asterisk's AST_CONTROL code of how the first leg ended."""


def _fingerprint(call: CallUpdated) -> tuple[object, ...]:
    return (
        call.status,
        call.ended,
        call.number,
        call.operators,
        call.rang,
        call.answered_at,
        call.duration_s,
        call.queue,
        call.recording,
        call.request_id,
        call.did,
    )


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def _seconds(duration: str) -> int:
    """``HH:MM:SS`` (CoreShowChannel's Duration) in seconds; 0 when unreadable."""
    parts = duration.split(":")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return 0
    hours, minutes, seconds = (int(part) for part in parts)
    return hours * 3600 + minutes * 60 + seconds
