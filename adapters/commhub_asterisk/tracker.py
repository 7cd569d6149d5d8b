"""The call tracker: AMI events in, call snapshots and screen-pop offers out.

Pure logic with the clock passed in, so the same code runs on a live PBX, a
replayed recording and a benchmark. It never raises on odd input: an event
about a channel it never saw created is ignored (its call ended while nobody
listened, or it is a replay), a repeated one changes nothing.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from commhub.channels import CallOffered, CallsInProgress, CallUpdated, InboundEvent
from commhub.domain.interactions import Direction, Status
from commhub_asterisk.calls import Call, CdrRecord, Leg, Talk
from commhub_asterisk.dialplan import Dialplan, Role, presented
from commhub_asterisk.wire import Headers

log = logging.getLogger(__name__)

FINISHED_LEGS_KEPT = 50_000
REQUESTS_KEPT = 10_000
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
        self._requests: OrderedDict[str, Call] = OrderedDict()
        """Calls by the click-to-call request they carry, so a failed Originate finds its call."""
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
            "BlindTransfer": self._blindtransfer,
            "AttendedTransfer": self._attendedtransfer,
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
            if call.cdr_deadline is not None and call.cdr_deadline <= now and not call.finalized:
                self._finalize(call, now)
        return self._drain()

    def reconcile(
        self,
        channels: Iterable[Headers],
        now: datetime,
        *,
        lost_at: datetime | None,
        complete: bool = True,
    ) -> list[InboundEvent]:
        """After a reconnect: follow on the calls still up, end those that ended meanwhile.

        ``channels`` are the PBX's ``CoreShowChannel`` rows: the truth about
        what is up *now*. They add what we did not know (a call that began
        while nobody listened, an answer or a transfer that happened then)
        and end what is gone; they never take back what the event stream
        showed (an answer, who talked, the DID, the recording). A leg gone
        from the list ended somewhere between ``lost_at`` (when we last heard
        from the PBX) and ``now``: it is ended at ``lost_at``, and the call's
        ``approximate_end_s`` says how long the doubt lasted. An incomplete
        list (the PBX never said it was complete) only adds.
        """
        live: dict[str, Headers] = {}
        for channel in channels:
            uniqueid = channel.get("Uniqueid", "")
            if uniqueid:
                live[uniqueid] = channel
        gone_at = lost_at if lost_at is not None and lost_at <= now else now
        doubt = max(0, round((now - gone_at).total_seconds()))
        for call in list(self.calls.values()) if complete else ():
            for old in list(call.legs.values()):
                if not old.gone and old.uniqueid not in live:
                    call.approximate_end_s = doubt
                    self._leg_gone(old, gone_at, cdr_expected=False)
        listed: dict[str, Leg] = {}
        for uniqueid, channel in live.items():
            leg = self.legs.get(uniqueid) or self._adopt(channel, now)
            if leg is not None:
                listed[uniqueid] = leg
                if channel.get("ChannelState") == "6" and leg.up_at is None:
                    leg.up_at = now
        self._rebridge(listed, live, gone_at, now)
        for leg in listed.values():
            call = leg.call
            if leg.role is Role.OPERATOR and not leg.bridge and not call.answered:
                # Still ringing after the drop: the operator's screen shows who it is.
                self._offer(call, leg)
        for call in {id(leg.call): leg.call for leg in listed.values()}.values():
            self._emit(call)
        self._out.append(self.in_progress(now, complete=complete))
        return self._drain()

    def in_progress(self, now: datetime, *, complete: bool = False) -> CallsInProgress:
        """The calls this tracker follows (``complete``: the PBX's own list was just read)."""
        up = frozenset(
            f"{self.pbx}:{call.linkedid}" for call in self.calls.values() if not call.finalized
        )
        return CallsInProgress(
            source=self.source, prefix=f"{self.pbx}:", external_ids=up, at=now, complete=complete
        )

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
        self, uniqueid: str, linkedid: str, channel: str, context: str, now: datetime
    ) -> Leg | None:
        if uniqueid in self.legs:
            return self.legs[uniqueid]
        if uniqueid in self.finished or not uniqueid:
            return None
        call = self.calls.get(linkedid)
        if call is None:
            call = self.calls[linkedid] = Call(linkedid=linkedid, started_at=now)
        role, extension = self.dialplan.classify(channel, context)
        leg = Leg(uniqueid=uniqueid, call=call, channel=channel, role=role, extension=extension)
        call.add_leg(leg)
        call.live += 1
        self.legs[uniqueid] = leg
        if uniqueid == linkedid:
            call.origin = leg
        return leg

    def _leg(self, headers: Headers, prefix: str = "") -> Leg | None:
        """The live leg an event names (``prefix="Dest"``: the dialled side).

        Only ``Newchannel`` and a reconnect's channel list make legs: an event
        about a channel we never saw created belongs to a call that ended
        while we were away (or is a replay), and must not bring it back.
        """
        return self.legs.get(headers.get(prefix + "Uniqueid", ""))

    def _adopt(self, channel: Headers, now: datetime) -> Leg | None:
        """A channel first seen in CoreShowChannels (the hub restarted or missed its start)."""
        linkedid = channel.get("Linkedid") or channel.get("Uniqueid", "")
        known = linkedid in self.calls
        leg = self._new_leg(
            channel.get("Uniqueid", ""),
            linkedid,
            channel.get("Channel", ""),
            channel.get("Context", ""),
            now,
        )
        if leg is None:
            return None
        call = leg.call
        if not known or call.adopted:
            call.adopted = True
            call.detail["reconciled"] = True
            # Duration counts from the channel's creation (not its answer); the oldest leg's
            # creation is the call's start, to the second.
            age = _seconds(channel.get("Duration", ""))
            call.started_at = min(call.started_at, now - timedelta(seconds=age))
        leg.caller_num = presented(channel.get("CallerIDNum", ""))
        leg.caller_name = presented(channel.get("CallerIDName", ""))
        leg.exten = channel.get("Exten", "")
        if leg is call.origin and leg.role is Role.TRUNK and not call.did and _a_number(leg.exten):
            call.did = leg.exten
        if leg.role is Role.TRUNK and leg is not call.origin and _a_number(leg.exten):
            origin = call.origin
            if origin is not None and origin.role is Role.OPERATOR and not call.dialled_number:
                # An operator's call out: the trunk leg's extension is the number dialled.
                leg.dialled = True
                call.dialled_number = self.dialplan.strip_prefix(leg.exten)
        return leg

    def _rebridge(
        self, listed: dict[str, Leg], rows: dict[str, Headers], gone_at: datetime, now: datetime
    ) -> None:
        """Bridges as the channel list shows them: a connection made meanwhile began at an
        unknown time; one that ended meanwhile ended when we last heard from the PBX."""
        members: dict[str, list[Leg]] = {}
        for uniqueid, leg in listed.items():
            bridge = rows[uniqueid].get("BridgeId", "")
            if leg.bridge and leg.bridge != bridge:
                self._leave(leg, leg.bridge, gone_at)
            if bridge:
                members.setdefault(bridge, []).append(leg)
        for bridge, legs in members.items():
            for leg in legs:
                if leg.bridge != bridge:
                    self._enter(leg, bridge, None, now)

    def _leg_gone(self, leg: Leg, now: datetime, *, cdr_expected: bool = True) -> None:
        if leg.gone:
            return
        if leg.bridge:
            self._leave(leg, leg.bridge, now)
        self._stop_talks(leg, now)
        leg.gone = True
        call = leg.call
        call.live -= 1
        if leg.role is Role.TRUNK and not call.answered and call.ended_at is None:
            if call.dial_status in ("", "RINGING") and call.rang:
                call.dial_status = "CANCEL"
        customer_gone = leg.role is Role.TRUNK and _customer_gone(call)
        if call.ended_at is None and (call.live == 0 or customer_gone):
            # The customer hung up: the call is over for the card even while an operator's
            # leg lingers (a Local pair, wrap-up), and its end is stored at once.
            call.ended_at = now
            if cdr_expected and self._waits_for_cdr(call):
                call.cdr_deadline = now + self.cdr_wait
            else:
                self._finalize(call, now)
        elif call.live == 0 and (call.finalized or call.direction() is None):
            self._retire(call, now)

    def _waits_for_cdr(self, call: Call) -> bool:
        if self.cdr_mode == "off" or (self.cdr_mode == "auto" and not self.cdr_seen):
            return False
        trunks = {leg.uniqueid for leg in call.trunk_legs()}
        confirmed = any(cdr.channel in trunks for cdr in call.cdrs.values())
        return not confirmed and call.direction() is not None

    def _finalize(self, call: Call, now: datetime) -> None:
        call.cdr_deadline = None
        call.finalized = True
        self._emit(call)
        if call.live == 0:
            self._retire(call, now)

    def _retire(self, call: Call, now: datetime) -> None:
        """Forget a finished call whose every leg is gone; late CDRs still find its legs.

        A call first seen in a channel list that ended before it showed us a
        customer (an operator's leg of a click-to-call, say) may be an open
        call in the log that we cannot name: saying what is still up lets the
        core end it.
        """
        if call.adopted and call.fingerprint is None:
            self._out.append(self.in_progress(now, complete=True))
        self.calls.pop(call.linkedid, None)
        for uniqueid, leg in call.legs.items():
            self.legs.pop(uniqueid, None)
            self.finished[uniqueid] = leg
        while len(self.finished) > FINISHED_LEGS_KEPT:
            self.finished.popitem(last=False)

    def _emit(self, call: Call) -> CallUpdated | None:
        """Queue the call's snapshot if anything a person sees has changed; returns it if built."""
        state = call.state_key()
        if state == call.state:
            return None
        call.state = state
        snapshot = call.snapshot(source=self.source, pbx=self.pbx, region=self.dialplan.region)
        if snapshot is None:
            return None
        fingerprint = _fingerprint(snapshot)
        if fingerprint != call.fingerprint:
            call.fingerprint = fingerprint
            self._out.append(snapshot)
        return snapshot

    def _offer(self, call: Call, leg: Leg) -> None:
        extension = leg.extension
        if extension is None or extension in call.rang or call.ended:
            return
        call.rang.append(extension)
        if call.direction() is not Direction.INBOUND:
            return
        snapshot = self._emit(call) or call.snapshot(
            source=self.source, pbx=self.pbx, region=self.dialplan.region
        )
        if snapshot is not None:
            self._out.append(CallOffered(call=snapshot, extension=extension))

    # --- who talks with whom ---------------------------------------------------------------

    def _connect(self, customer: Leg, operator: Leg, start: datetime | None, now: datetime) -> None:
        """The customer and an operator are connected (an answer, a bridge, a transfer),
        since ``start``; ``None`` when that was while nobody listened."""
        extension = operator.extension
        call = customer.call
        if extension is None or customer.gone or operator.gone or call.ended:
            return
        if call.talking(customer.uniqueid, operator.uniqueid) is not None:
            return
        self._drop_pending_transfer(call, customer)
        call.add_talk(Talk(extension, customer.uniqueid, operator.uniqueid, start, seen=now))
        if start is not None and extension not in call.rang:
            # Joined by a transfer, never rung by the call: the pop follows the customer.
            self._offer(call, operator)
        self._emit(call)

    def _pair(self, a: Leg, b: Leg) -> tuple[Leg, Leg] | None:
        """(customer, operator) when one is a trunk leg and the other an operator's phone."""
        if a.role is Role.TRUNK and b.role is Role.OPERATOR:
            return a, b
        if b.role is Role.TRUNK and a.role is Role.OPERATOR:
            return b, a
        return None

    def _enter(self, leg: Leg, bridge: str, start: datetime | None, now: datetime) -> None:
        members = self.bridges.setdefault(bridge, set())
        members.add(leg.uniqueid)
        leg.bridge = bridge
        for uniqueid in members:
            other = self.legs.get(uniqueid)
            if other is None or other is leg or other.call is not leg.call:
                continue
            pair = self._pair(leg, other)
            if pair is not None:
                self._connect(*pair, start, now)

    def _leave(self, leg: Leg, bridge: str, now: datetime) -> None:
        members = self.bridges.get(bridge)
        leg.bridge = ""
        if members is None:
            return
        members.discard(leg.uniqueid)
        for uniqueid in members:
            other = self.legs.get(uniqueid)
            if other is not None:
                self._stop_talk_between(leg, other, now)
        if not members:
            del self.bridges[bridge]

    def _stop_talk_between(self, a: Leg, b: Leg, now: datetime) -> None:
        pair = self._pair(a, b)
        if pair is None:
            return
        talk = a.call.talking(pair[0].uniqueid, pair[1].uniqueid)
        if talk is not None:
            talk.end = now if talk.start is None or talk.start <= now else talk.start

    def _stop_talks(self, leg: Leg, now: datetime) -> None:
        for talk in leg.call.talks:
            if talk.end is None and leg.uniqueid in (talk.customer, talk.operator):
                talk.end = now if talk.start is None or talk.start <= now else talk.start

    def _drain(self) -> list[InboundEvent]:
        out, self._out = self._out, []
        return out

    def _drop_pending_transfer(self, call: Call, customer: Leg) -> None:
        """A blind-transferred leg dialled a real phone: that phone's own answer counts."""
        call.drop_talks(f"transfer:{customer.uniqueid}")

    # --- event handlers --------------------------------------------------------------

    def _newchannel(self, h: Headers, now: datetime) -> None:
        uniqueid = h.get("Uniqueid", "")
        leg = self._new_leg(
            uniqueid,
            h.get("Linkedid") or uniqueid,
            h.get("Channel", ""),
            h.get("Context", ""),
            now,
        )
        if leg is None:
            return
        leg.caller_num = presented(h.get("CallerIDNum", "")) or leg.caller_num
        leg.caller_name = presented(h.get("CallerIDName", "")) or leg.caller_name
        leg.exten = h.get("Exten", "")
        if leg is leg.call.origin and leg.role is Role.TRUNK and not leg.call.did:
            leg.call.did = leg.exten
        if leg.caller_num and leg.role is Role.TRUNK:
            self._emit(leg.call)  # a SIP trunk names the caller at once: store it now

    def _newcallerid(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h)
        if leg is None:
            return
        number, name = leg.caller_num, leg.caller_name
        leg.caller_num = presented(h.get("CallerIDNum", "")) or leg.caller_num
        leg.caller_name = presented(h.get("CallerIDName", "")) or leg.caller_name
        if leg.role is Role.TRUNK and (number, name) != (leg.caller_num, leg.caller_name):
            self._emit(leg.call)

    def _newstate(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h)
        if leg is not None and h.get("ChannelState") == "6" and leg.up_at is None:
            leg.up_at = now

    def _rename(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h)
        if leg is not None:
            leg.channel = h.get("Newname", leg.channel)

    def _dialbegin(self, h: Headers, now: datetime) -> None:
        dest = self._leg(h, "Dest")
        if dest is None:
            return
        source = self._leg(h)
        if dest.role is Role.OPERATOR:
            if source is not None and source.role is Role.TRUNK:
                self._drop_pending_transfer(source.call, source)
            self._offer(dest.call, dest)
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
        dest = self._leg(h, "Dest")
        source = self._leg(h)
        if dest is None:
            return
        status = h.get("DialStatus", "")
        if source is not None and status == "ANSWER":
            pair = self._pair(source, dest)
            if pair is not None:
                self._connect(*pair, now, now)
                return
        call = (source or dest).call
        if not call.answered and status and status != "ANSWER":
            if dest.role is Role.OPERATOR or (dest.role is Role.TRUNK and dest.dialled):
                call.dial_status = status

    def _agentcalled(self, h: Headers, now: datetime) -> None:
        dest = self._leg(h, "Dest")
        if dest is None:
            return
        source = self._leg(h)
        if source is not None and h.get("Queue"):
            source.call.queue = h["Queue"]
        if dest.role is Role.OPERATOR:
            self._offer(source.call if source is not None else dest.call, dest)

    def _agentconnect(self, h: Headers, now: datetime) -> None:
        source = self._leg(h)
        dest = self._leg(h, "Dest")
        if source is None or dest is None:
            return
        call = source.call
        call.queue = h.get("Queue") or call.queue
        if h.get("HoldTime", "").isdigit():
            call.detail["queue_wait_s"] = int(h["HoldTime"])
        pair = self._pair(source, dest)
        if pair is not None:
            self._connect(*pair, now, now)
        self._emit(call)

    def _agentcomplete(self, h: Headers, now: datetime) -> None:
        source = self._leg(h)
        dest = self.legs.get(h.get("DestUniqueid", "")) or self.finished.get(
            h.get("DestUniqueid", "")
        )
        talk = h.get("TalkTime", "")
        if source is not None and dest is not None and dest.extension and talk.isdigit():
            source.call.agent_talk[dest.uniqueid] = (dest.extension, int(talk))

    def _queuejoin(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h)
        if leg is not None:
            leg.call.queue = h.get("Queue") or leg.call.queue
            self._emit(leg.call)

    def _queueabandon(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h)
        if leg is not None:
            leg.call.abandoned = True
            self._emit(leg.call)

    def _bridgeenter(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h)
        bridge = h.get("BridgeUniqueid", "")
        if leg is None or not bridge:
            return
        if leg.bridge and leg.bridge != bridge:
            self._leave(leg, leg.bridge, now)
        self._enter(leg, bridge, now, now)

    def _bridgeleave(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h)
        bridge = h.get("BridgeUniqueid", "")
        if leg is not None and bridge:
            self._leave(leg, bridge, now)

    def _blindtransfer(self, h: Headers, now: datetime) -> None:
        """An operator sent the customer to an extension (Asterisk's ``BlindTransfer``).

        When the target is an operator's extension in an operators' context
        and the customer's leg is not seen dialling a phone next, the leg
        itself now runs that extension (a Local-channel PBX, a redirect to a
        parked line): that extension talks from now on. A phone dialled next
        replaces this guess with its own answer.
        """
        if h.get("Result", "Success") != "Success":
            return
        customer = self._leg(h, "Transferee")
        transferer = self._leg(h, "Transferer")
        if customer is None and transferer is not None and transferer.bridge:
            members = self.bridges.get(transferer.bridge, set())
            customer = next(
                (
                    self.legs[u]
                    for u in members
                    if u in self.legs and self.legs[u].role is Role.TRUNK
                ),
                None,
            )
        if customer is None or customer.role is not Role.TRUNK:
            return
        call = customer.call
        call.transfers.append("blind")
        extension = h.get("Extension", "")
        if transferer is not None:
            self._stop_talk_between(customer, transferer, now)
        target_role, _ = self.dialplan.classify("", h.get("Context", ""))
        if target_role is Role.OPERATOR and extension.isdigit():
            marker = f"transfer:{customer.uniqueid}"
            call.add_talk(Talk(extension, customer.uniqueid, marker, now))
            if extension not in call.rang:
                call.rang.append(extension)
        self._emit(call)

    def _attendedtransfer(self, h: Headers, now: datetime) -> None:
        """Bridges tell who talks after an attended transfer; the call notes that it was one."""
        if h.get("Result", "Success") != "Success":
            return
        for prefix in ("Transferee", "OrigTransferer", "SecondTransferer"):
            leg = self._leg(h, prefix)
            if leg is not None:
                leg.call.transfers.append("attended")
                self._emit(leg.call)
                return

    def _hangup(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h)
        if leg is None:
            return
        self._leg_gone(leg, now)

    def _varset(self, h: Headers, now: datetime) -> None:
        leg = self._leg(h)
        if leg is None:
            return
        attribute = _VARIABLES.get(h.get("Variable", "").lstrip("_"))
        value = h.get("Value", "")
        call = leg.call
        if attribute is None or not value or getattr(call, attribute) == value:
            return  # not ours, or the same again (inherited by the next leg)
        setattr(call, attribute, value)
        if attribute == "request_id":
            self._requests[value] = call
            while len(self._requests) > REQUESTS_KEPT:
                self._requests.popitem(last=False)
        # Every fact is stored as soon as it is known: a crash a moment later must not lose it.
        self._emit(call)

    def _cdr(self, h: Headers, now: datetime) -> None:
        """A CDR confirms times, and proves an answer the event stream did not show us."""
        self.cdr_seen = True
        uniqueid = h.get("UniqueID") or h.get("Uniqueid", "")
        leg = self.legs.get(uniqueid) or self.finished.get(uniqueid)
        if leg is None:
            return
        # One string, not a tuple holding the event's own: 50,000 finished legs keep these.
        key = "\x1f".join([uniqueid, *(h.get(k, "") for k in _CDR_IDENTITY)])
        call = leg.call
        if key in call.cdrs:
            return
        record = CdrRecord(
            channel=uniqueid,
            destination=h.get("DestinationChannel", ""),
            answered=h.get("Disposition", "") == "ANSWERED",
            billable=_int(h.get("BillableSeconds", "")),
            duration=_int(h.get("Duration", "")),
        )
        call.cdrs[key] = record
        if record.answered and record.destination:
            self._answered_by_cdr(call, leg, record.destination)
        if call.finalized:
            self._emit(call)
        elif call.cdr_deadline is not None and leg.role is Role.TRUNK:
            self._finalize(call, now)

    def _answered_by_cdr(self, call: Call, leg: Leg, destination: str) -> None:
        other = next((x for x in call.legs.values() if x.channel == destination), None)
        pair = None if other is None else self._pair(leg, other)
        if pair is None:
            return
        customer, operator = pair
        if operator.extension is not None and operator.extension not in call.operators():
            # Connected while nobody listened: when, only the CDRs can say.
            end = call.ended_at
            call.add_talk(
                Talk(operator.extension, customer.uniqueid, operator.uniqueid, None, end, end)
            )

    def _originateresponse(self, h: Headers, now: datetime) -> None:
        expected = self.originates.pop(h.get("ActionID", ""), None)
        if expected is None or h.get("Response") != "Failure":
            return
        request_id, extension, number = expected
        reason = _ORIGINATE_REASONS.get(h.get("Reason", ""), "the PBX could not place the call")
        call = self._requests.get(request_id)
        if call is not None:
            # The operator's legs were made (and failed): that call is the request's record.
            call.detail["reason"] = reason
            call.dialled_number = call.dialled_number or number
            if extension not in call.rang:
                call.rang.append(extension)
            self._emit(call)
            return
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
                total_s=0,
                wait_s=0,
                rang=(extension,),
                request_id=request_id,
                detail={"reason": reason},
            )
        )


_VARIABLES = {
    "MIXMONITOR_FILENAME": "recording",
    "COMMHUB_CALL_ID": "request_id",
    "COMMHUB_DID": "did",
}
"""The channel variables the hub reads (``wire.VARIABLES``) and the call facts they set."""

_CDR_IDENTITY = ("StartTime", "AnswerTime", "EndTime", "Disposition", "LastApplication", "Duration")
"""What tells one CDR of a leg from another (a repeated event is the same CDR)."""

_ORIGINATE_REASONS = {
    "0": "no such extension, or the operator's phone is unreachable",
    "1": "the operator's phone hung up",
    "3": "the operator did not answer",
    "5": "the operator's phone was busy",
    "8": "the PBX reported congestion",
}
"""OriginateResponse ``Reason``: Asterisk's AST_CONTROL code of how the operator's leg ended
(0: the channel could not even be created, as for an extension that does not exist)."""


def _fingerprint(call: CallUpdated) -> tuple[object, ...]:
    return (
        call.status,
        call.ended,
        call.number,
        call.caller_name,
        call.operators,
        call.rang,
        call.answered_at,
        call.duration_s,
        call.operator_talk,
        call.total_s,
        call.queue,
        call.recording,
        call.request_id,
        call.did,
        tuple(sorted(call.detail.items(), key=lambda item: item[0])) if call.detail else (),
    )


def _customer_gone(call: Call) -> bool:
    """Every leg on the customer's side has hung up (a call to a card only)."""
    trunks = call.trunk_legs()
    return bool(trunks) and all(leg.gone for leg in trunks) and call.direction() is not None


def _a_number(text: str) -> bool:
    """Whether a channel's extension looks like a phone number (not ``s`` or a short code)."""
    digits = text.removeprefix("+")
    return len(digits) >= 3 and digits.isdigit()


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def _seconds(duration: str) -> int:
    """``HH:MM:SS`` (CoreShowChannel's Duration) in seconds; 0 when unreadable."""
    parts = duration.split(":")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return 0
    hours, minutes, seconds = (int(part) for part in parts)
    return hours * 3600 + minutes * 60 + seconds
