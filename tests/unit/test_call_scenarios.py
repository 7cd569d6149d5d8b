"""Calls the recordings do not cover, built from the same AMI event shapes on a SIP PBX.

Channel names are PJSIP's (``PJSIP/provider-…`` for the trunk, ``PJSIP/201-…``
for phones), so these also check that a real SIP PBX is read like the
recorded Local-channel one. Each scenario goes through the real message
reader and tracker with a clock the test moves.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from commhub.channels import CallOffered, CallUpdated, InboundEvent
from commhub.domain.interactions import Direction, Status
from commhub_asterisk.config import PbxSettings
from commhub_asterisk.dialplan import Dialplan
from commhub_asterisk.tracker import CallTracker
from commhub_asterisk.wire import MessageReader

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
DID = "74951234567"

SETTINGS = PbxSettings(
    username="commhub",
    secret="secret",  # type: ignore[arg-type]
    trunk_contexts=("from-trunk",),
    trunk_channels=(r"^PJSIP/provider-",),
    operator_contexts=("from-internal",),
    region="RU",
    dial_prefix="9",
)


class Pbx:
    """Writes AMI events the way Asterisk does and feeds them to a tracker."""

    def __init__(self) -> None:
        self.tracker = CallTracker(
            source="asterisk:sip", pbx="sip", dialplan=Dialplan(SETTINGS, region="US")
        )
        self.now = T0
        self.events: list[InboundEvent] = []
        self.reader = MessageReader(on_event=self._event, on_other=lambda raw: None)
        self._ids = itertools.count(1)
        self._channels = itertools.count(1)
        self.linkedid = ""

    def _event(self, name: str, headers: dict[str, str]) -> None:
        self.events.extend(self.tracker.handle(name, headers, self.now))

    def send(self, event: str, **headers: str) -> None:
        lines = [f"Event: {event}", "Privilege: call,all"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        self.reader.feed(("\r\n".join(lines) + "\r\n\r\n").encode())

    def wait(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def channel(self, name: str, context: str, exten: str, caller: str = "") -> dict[str, str]:
        """A new channel (``Newchannel``); the first one of a call sets its Linkedid."""
        uniqueid = f"1795400000.{next(self._ids)}"
        if not self.linkedid:
            self.linkedid = uniqueid
        fields = {
            "Channel": f"{name}-{next(self._channels):08x}",
            "Uniqueid": uniqueid,
            "Linkedid": self.linkedid,
            "Context": context,
        }
        self.send(
            "Newchannel",
            **fields,
            ChannelState="4",
            CallerIDNum=caller or "<unknown>",
            CallerIDName="<unknown>",
            Exten=exten,
        )
        return fields

    def dial(self, source: dict[str, str] | None, dest: dict[str, str], dial_string: str) -> None:
        self.send("DialBegin", **_both(source, dest), DialString=dial_string)

    def dial_end(self, source: dict[str, str] | None, dest: dict[str, str], status: str) -> None:
        self.send("DialEnd", **_both(source, dest), DialStatus=status)

    def up(self, leg: dict[str, str]) -> None:
        self.send("Newstate", **leg, ChannelState="6", ChannelStateDesc="Up")

    def bridge(self, bridge: str, *legs: dict[str, str]) -> None:
        for leg in legs:
            self.send("BridgeEnter", **leg, BridgeUniqueid=bridge, BridgeType="basic")

    def unbridge(self, bridge: str, *legs: dict[str, str]) -> None:
        for leg in legs:
            self.send("BridgeLeave", **leg, BridgeUniqueid=bridge)

    def hangup(self, *legs: dict[str, str], cause: str = "16") -> None:
        for leg in legs:
            self.send("Hangup", **leg, Cause=cause)

    def finals(self) -> list[CallUpdated]:
        self.events.extend(self.tracker.sweep(self.now + timedelta(minutes=1)))
        return [e for e in self.events if isinstance(e, CallUpdated) and e.ended]

    def offers(self) -> list[str]:
        return [e.extension for e in self.events if isinstance(e, CallOffered)]


def _both(source: dict[str, str] | None, dest: dict[str, str]) -> dict[str, str]:
    fields = dict(source or {})
    fields.update({f"Dest{key}": value for key, value in dest.items()})
    return fields


def inbound(pbx: Pbx, caller: str = "89161234567") -> dict[str, str]:
    return pbx.channel("PJSIP/provider", "from-trunk", DID, caller)


def phone(pbx: Pbx, extension: str) -> dict[str, str]:
    return pbx.channel(f"PJSIP/{extension}", "from-internal", "s")


def test_ring_group_pops_every_phone_and_the_one_who_answers_takes_the_call() -> None:
    pbx = Pbx()
    trunk = inbound(pbx)
    phones = {ext: phone(pbx, ext) for ext in ("201", "202", "203")}
    for ext, leg in phones.items():
        pbx.dial(trunk, leg, f"PJSIP/{ext}")
    assert pbx.offers() == ["201", "202", "203"]
    pbx.wait(4)
    pbx.up(phones["202"])
    pbx.up(trunk)
    pbx.dial_end(trunk, phones["202"], "ANSWER")
    for ext in ("201", "203"):
        pbx.dial_end(trunk, phones[ext], "CANCEL")
        pbx.hangup(phones[ext])
    pbx.bridge("b1", trunk, phones["202"])
    pbx.wait(42)
    pbx.hangup(phones["202"], trunk)
    [call] = pbx.finals()
    assert call.direction is Direction.INBOUND and call.status is Status.ANSWERED
    assert call.number == "89161234567"
    assert call.operators == ("202",) and call.rang == ("201", "202", "203")
    assert call.duration_s == 42


def test_blind_transfer_keeps_one_call_with_both_operators() -> None:
    pbx = Pbx()
    trunk = inbound(pbx)
    first = phone(pbx, "201")
    pbx.dial(trunk, first, "PJSIP/201")
    pbx.wait(2)
    pbx.up(first)
    pbx.up(trunk)
    pbx.dial_end(trunk, first, "ANSWER")
    pbx.bridge("b1", trunk, first)
    pbx.wait(20)
    # 201 transfers the customer to 202: the customer's leg leaves the bridge and dials 202.
    pbx.send("BlindTransfer", Result="Success", Extension="202", Context="from-internal")
    pbx.unbridge("b1", trunk, first)
    pbx.hangup(first)
    second = phone(pbx, "202")
    pbx.dial(trunk, second, "PJSIP/202")
    assert pbx.offers() == ["201", "202"]
    pbx.wait(3)
    pbx.up(second)
    pbx.dial_end(trunk, second, "ANSWER")
    pbx.bridge("b2", trunk, second)
    pbx.wait(30)
    pbx.hangup(second, trunk)
    [call] = pbx.finals()
    assert call.status is Status.ANSWERED
    assert call.operators == ("201", "202")
    # Each operator's own talk; 202's phone ringing is neither's.
    assert call.operator_talk == (("201", 20), ("202", 30)) and call.duration_s == 50
    assert call.total_s == 55 and call.wait_s == 2
    assert len({e.external_id for e in pbx.events if isinstance(e, CallUpdated)}) == 1


def test_busy_operator_makes_a_missed_call_that_says_busy() -> None:
    pbx = Pbx()
    trunk = inbound(pbx)
    leg = phone(pbx, "201")
    pbx.dial(trunk, leg, "PJSIP/201")
    pbx.dial_end(trunk, leg, "BUSY")
    pbx.hangup(leg, cause="17")
    pbx.wait(1)
    pbx.hangup(trunk, cause="17")
    [call] = pbx.finals()
    assert call.status is Status.MISSED and call.detail["reason"] == "busy"
    assert call.rang == ("201",) and call.operators == ()
    assert call.duration_s == 0 and call.answered_at is None


def test_caller_hanging_up_while_it_rings_is_a_missed_call() -> None:
    pbx = Pbx()
    trunk = inbound(pbx)
    leg = phone(pbx, "201")
    pbx.dial(trunk, leg, "PJSIP/201")
    pbx.wait(6)
    pbx.hangup(trunk)
    pbx.dial_end(trunk, leg, "CANCEL")
    pbx.hangup(leg)
    [call] = pbx.finals()
    assert call.status is Status.MISSED
    assert call.detail["reason"] == "caller hung up while ringing"
    assert (call.ended_at - call.started_at) == timedelta(seconds=6)  # type: ignore[operator]


def test_caller_leaving_the_queue_is_an_abandoned_call_and_every_agent_got_the_pop() -> None:
    pbx = Pbx()
    trunk = inbound(pbx, "84957778899")
    pbx.up(trunk)
    pbx.send("QueueCallerJoin", **trunk, Queue="sales", Position="1", Count="1")
    for ext in ("201", "202"):
        agent = phone(pbx, ext)
        pbx.send("AgentCalled", **_both(trunk, agent), Queue="sales", MemberName=f"PJSIP/{ext}")
        pbx.wait(15)
        pbx.send("AgentRingNoAnswer", **_both(trunk, agent), Queue="sales", RingTime="15")
        pbx.hangup(agent)
    pbx.send("QueueCallerAbandon", **trunk, Queue="sales", Position="1", HoldTime="30")
    pbx.hangup(trunk)
    [call] = pbx.finals()
    assert call.status is Status.ABANDONED and call.queue == "sales"
    assert pbx.offers() == ["201", "202"]
    assert call.duration_s == 0


def test_operator_dialling_out_unanswered_is_their_no_answer_call() -> None:
    pbx = Pbx()
    own = pbx.channel("PJSIP/201", "from-internal", "989161234567", "201")
    trunk = pbx.channel("PJSIP/provider", "from-trunk", "s")
    pbx.dial(own, trunk, "PJSIP/89161234567@provider")
    pbx.wait(30)
    pbx.dial_end(own, trunk, "NOANSWER")
    pbx.hangup(trunk, own)
    [call] = pbx.finals()
    assert call.direction is Direction.OUTBOUND and call.status is Status.NO_ANSWER
    assert call.number == "89161234567"
    assert call.rang == ("201",) and call.operators == ()
    assert pbx.offers() == []


def test_operator_dialling_out_answered_is_their_answered_call() -> None:
    pbx = Pbx()
    own = pbx.channel("PJSIP/201", "from-internal", "989161234567", "201")
    trunk = pbx.channel("PJSIP/provider", "from-trunk", "s")
    pbx.dial(own, trunk, "PJSIP/89161234567@provider")
    pbx.wait(5)
    pbx.up(trunk)
    pbx.dial_end(own, trunk, "ANSWER")
    pbx.bridge("b1", own, trunk)
    pbx.wait(61)
    pbx.hangup(trunk, own)
    [call] = pbx.finals()
    assert call.direction is Direction.OUTBOUND and call.status is Status.ANSWERED
    assert call.operators == ("201",) and call.duration_s == 61


def test_a_call_between_two_operators_never_reaches_a_card() -> None:
    pbx = Pbx()
    caller = pbx.channel("PJSIP/201", "from-internal", "202", "201")
    callee = phone(pbx, "202")
    pbx.dial(caller, callee, "PJSIP/202")
    pbx.up(callee)
    pbx.dial_end(caller, callee, "ANSWER")
    pbx.wait(10)
    pbx.hangup(callee, caller)
    assert pbx.finals() == [] and pbx.offers() == []
    assert pbx.tracker.active_calls == 0


def test_failed_originate_lands_as_a_failed_call_with_the_reason() -> None:
    pbx = Pbx()
    pbx.tracker.expect_originate("c2c-7", "req-7", "201", "+79161234567")
    pbx.send(
        "OriginateResponse",
        ActionID="c2c-7",
        Response="Failure",
        Channel="PJSIP/201",
        Reason="3",
        Uniqueid="<null>",
    )
    [call] = pbx.finals()
    assert call.direction is Direction.OUTBOUND and call.status is Status.FAILED
    assert call.request_id == "req-7" and call.detail["reason"] == "the operator did not answer"


def test_an_event_for_a_hung_up_leg_after_the_call_ended_changes_nothing() -> None:
    pbx = Pbx()
    trunk = inbound(pbx)
    leg = phone(pbx, "201")
    pbx.dial(trunk, leg, "PJSIP/201")
    pbx.up(leg)
    pbx.dial_end(trunk, leg, "ANSWER")
    pbx.wait(9)
    pbx.hangup(leg, trunk)
    [call] = pbx.finals()
    before = len(pbx.events)
    pbx.up(leg)
    pbx.dial(trunk, leg, "PJSIP/201")
    pbx.hangup(leg, trunk)
    assert pbx.finals() == [call] and len(pbx.events) == before


def test_blind_transfer_to_an_extension_the_customer_leg_runs_itself() -> None:
    """A redirect into the operators' context (a Local-channel PBX): no phone is dialled,
    the customer's leg runs 202's extension; only BlindTransfer says who talks now."""
    pbx = Pbx()
    trunk = inbound(pbx)
    first = phone(pbx, "201")
    pbx.dial(trunk, first, "PJSIP/201")
    pbx.wait(3)
    pbx.up(first)
    pbx.up(trunk)
    pbx.dial_end(trunk, first, "ANSWER")
    pbx.bridge("b1", trunk, first)
    pbx.wait(12)
    pbx.send(
        "BlindTransfer",
        Result="Success",
        **{f"Transferer{k}": v for k, v in first.items()},
        **{f"Transferee{k}": v for k, v in trunk.items()},
        Context="from-internal",
        Extension="202",
        IsExternal="No",
    )
    pbx.unbridge("b1", trunk, first)
    pbx.hangup(first)
    pbx.wait(25)
    pbx.hangup(trunk)
    [call] = pbx.finals()
    assert call.status is Status.ANSWERED
    assert call.operator_talk == (("201", 12), ("202", 25))
    assert call.rang == ("201", "202") and call.detail["transfers"] == ["blind"]
    assert call.total_s == 40 and call.wait_s == 3


def test_a_transferred_customer_pops_on_the_next_operators_screen() -> None:
    pbx = Pbx()
    trunk = inbound(pbx)
    first = phone(pbx, "201")
    pbx.dial(trunk, first, "PJSIP/201")
    pbx.up(first)
    pbx.dial_end(trunk, first, "ANSWER")
    pbx.bridge("b1", trunk, first)
    pbx.wait(5)
    # An attended transfer: 202 joins the customer's bridge when 201 completes it.
    second = phone(pbx, "202")
    pbx.unbridge("b1", first)
    pbx.bridge("b1", second)
    pbx.send(
        "AttendedTransfer", Result="Success", **{f"Transferee{k}": v for k, v in trunk.items()}
    )
    assert pbx.offers() == ["201", "202"]
    pbx.hangup(first)
    pbx.wait(7)
    pbx.hangup(second, trunk)
    [call] = pbx.finals()
    assert call.operator_talk == (("201", 5), ("202", 7))
    assert call.detail["transfers"] == ["attended"]
