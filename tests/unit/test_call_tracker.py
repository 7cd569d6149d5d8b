"""The call tracker on the recorded Asterisk streams: one right call record per recording.

The streams are fed through the same message reader the live link uses, all
at once (the receiver's clock sees no time pass, so CDRs must supply the
durations) and paced by the recorded timing (our own clock measures them).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from commhub.channels import CallOffered, CallUpdated, InboundEvent
from commhub.domain.interactions import Direction, Status
from commhub_asterisk.config import PbxSettings
from commhub_asterisk.dialplan import Dialplan, Role
from commhub_asterisk.tracker import CallTracker
from commhub_asterisk.wire import CALL_EVENTS, MessageReader

AMI = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "ami"
T0 = datetime(2026, 11, 22, 19, 41, 10, tzinfo=UTC)

SETTINGS = PbxSettings(
    username="commhub",
    secret="secret",  # type: ignore[arg-type]
    trunk_contexts=("from-trunk", "sim-pstn-out"),
    operator_contexts=("operators", "operators-noanswer", "from-internal"),
    region="RU",
)


@dataclass(frozen=True)
class Expected:
    direction: Direction
    status: Status
    number: str
    talk: tuple[tuple[str, int], ...]
    rang: tuple[str, ...]
    total_s: int
    queue: str | None = None
    recorded: bool = True
    caller_name: str = ""
    request_id: str | None = None

    @property
    def operators(self) -> tuple[str, ...]:
        return tuple(extension for extension, _ in self.talk)

    @property
    def talk_s(self) -> int:
        return sum(seconds for _, seconds in self.talk)


IN, OUT = Direction.INBOUND, Direction.OUTBOUND
EXPECTED = {
    # Figures from the recordings' README: each operator's talk, the whole call (the
    # longest CDR Duration: from the caller reaching the PBX to hang-up).
    "inbound_answered_ru_trunk_prefix": Expected(
        IN, Status.ANSWERED, "89161234567", (("201", 8),), ("201",), 10
    ),
    "inbound_answered_e164_with_name": Expected(
        IN,
        Status.ANSWERED,
        "+79035550101",
        (("201", 6),),
        ("201",),
        8,
        caller_name="IVAN PETROV",
    ),
    "inbound_answered_gb_national": Expected(
        IN, Status.ANSWERED, "02079460958", (("201", 5),), ("201",), 7
    ),
    "inbound_missed_no_answer": Expected(
        IN, Status.MISSED, "89161234567", (), ("202",), 10, recorded=False
    ),
    "inbound_queue_answered": Expected(
        IN, Status.ANSWERED, "84957778899", (("201", 6),), ("201",), 9, "sales", recorded=False
    ),
    "outbound_click_to_call_answered": Expected(
        OUT, Status.ANSWERED, "89161234567", (("201", 7),), ("201",), 12, request_id="c2c-0001"
    ),
    "inbound_anonymous": Expected(
        IN, Status.ANSWERED, "anonymous", (("201", 4),), ("201",), 6, caller_name="Anonymous"
    ),
    "inbound_attended_transfer": Expected(
        IN, Status.ANSWERED, "+79161112233", (("201", 4), ("202", 5)), ("201", "202"), 19
    ),
    "inbound_queue_early_answer": Expected(
        IN,
        Status.ANSWERED,
        "89167770044",
        (("201", 6),),
        ("201", "202"),
        12,
        "sales",
        recorded=False,
    ),
}


class Replay:
    """A tracker fed by a reader, with the clock under the test's control."""

    def __init__(self, settings: PbxSettings = SETTINGS) -> None:
        self.tracker = CallTracker(
            source="asterisk:test",
            pbx="test",
            dialplan=Dialplan(settings, region="US"),
            cdr=settings.cdr,
            cdr_wait_s=settings.cdr_wait_s,
        )
        self.now = T0
        self.events: list[InboundEvent] = []
        self.reader = MessageReader(on_event=self._event, on_other=lambda raw: None)

    def _event(self, name: str, headers: dict[str, str]) -> None:
        self.events.extend(self.tracker.handle(name, headers, self.now))

    def feed(self, data: bytes) -> None:
        self.reader.feed(data)

    def play(self, name: str, *, paced: bool) -> None:
        data = (AMI / f"{name}.ami").read_bytes()
        if not paced:
            self.feed(data)
        else:
            timing = json.loads((AMI / f"{name}.timing.json").read_text())
            for seconds, offset, length in timing["packets"]:
                self.now = T0 + timedelta(seconds=seconds)
                self.feed(data[offset : offset + length])
        self.finish()

    def finish(self) -> None:
        self.events.extend(self.tracker.sweep(self.now + timedelta(minutes=1)))

    def finals(self) -> list[CallUpdated]:
        """Each call's last final snapshot (a CDR after the end may refine the first one)."""
        last: dict[str, CallUpdated] = {}
        for event in self.events:
            if isinstance(event, CallUpdated) and event.ended:
                last[event.external_id] = event
        return list(last.values())

    def offers(self) -> list[CallOffered]:
        return [e for e in self.events if isinstance(e, CallOffered)]


@pytest.mark.parametrize("paced", [False, True], ids=["all-at-once", "paced"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_recording_makes_its_one_call_record(name: str, paced: bool) -> None:
    replay = Replay()
    replay.play(name, paced=paced)
    expected = EXPECTED[name]
    [call] = replay.finals()
    assert call.direction is expected.direction
    assert call.status is expected.status
    assert call.number == expected.number
    assert call.caller_name == expected.caller_name
    assert call.operators == expected.operators
    assert call.rang == expected.rang
    assert call.operator_talk == expected.talk
    assert call.duration_s == expected.talk_s
    assert call.total_s == expected.total_s
    assert call.queue == expected.queue
    assert call.request_id == expected.request_id
    assert (call.recording or "").endswith(".wav") is expected.recorded
    assert call.ended_at is not None and call.started_at <= call.ended_at
    assert abs((call.ended_at - call.started_at).total_seconds() - expected.total_s) <= 1
    if call.status is Status.ANSWERED:
        assert call.answered_at is not None and call.started_at <= call.answered_at
        assert call.wait_s == round((call.answered_at - call.started_at).total_seconds())
        if len(expected.talk) == 1:
            talk = (call.ended_at - call.answered_at).total_seconds()
            assert abs(talk - expected.talk_s) <= 1
            assert call.wait_s == expected.total_s - expected.talk_s
    else:
        assert call.answered_at is None and call.wait_s == call.total_s
    assert replay.tracker.active_calls == 0


def test_inbound_call_record_carries_the_dialled_number_and_recording_file() -> None:
    replay = Replay()
    replay.play("inbound_answered_ru_trunk_prefix", paced=True)
    [call] = replay.finals()
    assert call.did == "74951234567"
    assert call.external_id == "test:1795376470.0"
    assert call.recording == "/opt/ceo-ast/var/spool/asterisk/monitor/1795376470.1.wav"
    assert call.region == "RU"


def test_missed_call_says_why() -> None:
    replay = Replay()
    replay.play("inbound_missed_no_answer", paced=True)
    [call] = replay.finals()
    assert call.detail["reason"] == "no answer"
    assert (call.ended_at - call.started_at).total_seconds() == pytest.approx(10, abs=0.5)


def test_queue_call_keeps_the_queue_wait_apart_from_the_agents_talk() -> None:
    replay = Replay()
    replay.play("inbound_queue_answered", paced=True)
    [call] = replay.finals()
    assert call.detail["queue_wait_s"] == 2
    assert call.operator_talk == (("201", 6),) and call.wait_s == 3


def test_operator_gets_one_screen_pop_while_the_phone_rings() -> None:
    replay = Replay()
    replay.play("inbound_answered_e164_with_name", paced=True)
    [offer] = replay.offers()
    assert offer.extension == "201"
    assert offer.call.number == "+79035550101"
    assert offer.call.status is Status.RINGING
    assert offer.call.caller_name == "IVAN PETROV"
    offered_at = replay.events.index(offer)
    answered = [
        i
        for i, e in enumerate(replay.events)
        if isinstance(e, CallUpdated) and e.status is Status.ANSWERED
    ]
    assert offered_at < answered[0]


def test_queue_member_gets_the_screen_pop() -> None:
    replay = Replay()
    replay.play("inbound_queue_answered", paced=False)
    assert [o.extension for o in replay.offers()] == ["201"]
    assert replay.offers()[0].call.queue == "sales"


def test_click_to_call_pops_nothing_on_the_operators_own_phone() -> None:
    replay = Replay()
    replay.play("outbound_click_to_call_answered", paced=False)
    assert replay.offers() == []


def test_burst_of_ten_interleaved_calls_makes_ten_records() -> None:
    replay = Replay()
    replay.play("inbound_burst_10", paced=False)
    finals = replay.finals()
    assert len(finals) == 10
    assert len({c.external_id for c in finals}) == 10
    assert len({c.number for c in finals}) == 10
    assert all(c.status is Status.ANSWERED and c.duration_s == 4 for c in finals)
    assert len(replay.offers()) == 10


def test_replaying_a_stream_twice_adds_nothing() -> None:
    replay = Replay()
    replay.play("inbound_answered_ru_trunk_prefix", paced=False)
    before = len(replay.events)
    replay.play("inbound_answered_ru_trunk_prefix", paced=False)
    assert len(replay.events) == before


def test_every_message_twice_still_makes_one_identical_record() -> None:
    once, twice = Replay(), Replay()
    once.play("inbound_queue_answered", paced=False)
    data = (AMI / "inbound_queue_answered.ami").read_bytes()
    for message in data.split(b"\r\n\r\n"):
        twice.feed(message + b"\r\n\r\n")
        twice.feed(message + b"\r\n\r\n")
    twice.finish()
    assert twice.finals() == once.finals()


def test_garbage_between_messages_is_skipped_and_loses_no_call() -> None:
    clean, dirty = Replay(), Replay()
    clean.play("inbound_burst_10", paced=False)
    data = (AMI / "inbound_burst_10.ami").read_bytes()
    noise = random.Random(7)
    for message in data.split(b"\r\n\r\n"):
        dirty.feed(message + b"\r\n\r\n")
        if noise.random() < 0.2:
            junk = bytes(noise.randrange(256) for _ in range(noise.randrange(1, 300)))
            dirty.feed(junk.replace(b"\r\n\r\n", b"") + b"\r\n\r\n")
        if noise.random() < 0.1:
            dirty.feed(b"Event: Newstate\r\nUniqueid: \r\nChannelState: x\r\n\r\n")
        if noise.random() < 0.1:
            dirty.feed(b"Event: DialEnd\r\nDestUniqueid: nope\r\nDialStatus: ANSWER\r\n\r\n")
    dirty.finish()
    assert dirty.reader.malformed > 0
    assert sorted(c.external_id for c in dirty.finals()) == sorted(
        c.external_id for c in clean.finals()
    )
    assert all(c.duration_s == 4 for c in dirty.finals())


def test_a_call_spanning_a_link_drop_is_logged_once_with_its_duration() -> None:
    data = (AMI / "inbound_answered_ru_trunk_prefix.ami").read_bytes()
    timing = json.loads((AMI / "inbound_answered_ru_trunk_prefix.timing.json").read_text())
    packets = timing["packets"]
    replay = Replay()
    cut = next(i for i, p in enumerate(packets) if p[0] > 3)  # answered, still talking
    for seconds, offset, length in packets[:cut]:
        replay.now = T0 + timedelta(seconds=seconds)
        replay.feed(data[offset : offset + length])
    live = [
        {
            "Channel": leg.channel,
            "Uniqueid": uniqueid,
            "Linkedid": leg.call.linkedid,
            "ChannelState": "6",
            "Duration": "00:00:05",
            "BridgeId": leg.bridge,
        }
        for uniqueid, leg in replay.tracker.legs.items()
    ]
    replay.now = T0 + timedelta(seconds=6)
    replay.events.extend(
        replay.tracker.reconcile(live, replay.now, lost_at=T0 + timedelta(seconds=4))
    )
    for seconds, offset, length in packets[cut:]:
        replay.now = T0 + timedelta(seconds=seconds)
        replay.feed(data[offset : offset + length])
    replay.finish()
    [call] = replay.finals()
    assert call.status is Status.ANSWERED and call.duration_s == 8
    assert "approximate_end_s" not in call.detail


def test_a_call_that_ended_during_a_link_drop_is_closed_as_approximate() -> None:
    data = (AMI / "inbound_answered_ru_trunk_prefix.ami").read_bytes()
    timing = json.loads((AMI / "inbound_answered_ru_trunk_prefix.timing.json").read_text())
    replay = Replay()
    for seconds, offset, length in timing["packets"]:
        if seconds > 3:
            break
        replay.now = T0 + timedelta(seconds=seconds)
        replay.feed(data[offset : offset + length])
    lost = replay.now
    replay.now = T0 + timedelta(seconds=20)
    replay.events.extend(replay.tracker.reconcile([], replay.now, lost_at=lost))
    [call] = replay.finals()
    assert call.status is Status.ANSWERED
    assert call.operators == ("201",)
    assert call.detail["approximate_end_s"] == round((replay.now - lost).total_seconds())
    assert replay.tracker.active_calls == 0


def test_a_call_already_up_when_the_hub_starts_is_adopted() -> None:
    replay = Replay()
    channels = [
        {
            "Channel": "PJSIP/provider-00000001",
            "Uniqueid": "1700000000.1",
            "Linkedid": "1700000000.1",
            "Context": "from-trunk",
            "Exten": "74951234567",
            "ChannelState": "6",
            "CallerIDNum": "89161234567",
            "Duration": "00:01:00",
            "BridgeId": "b1",
        },
        {
            "Channel": "PJSIP/201-00000002",
            "Uniqueid": "1700000000.2",
            "Linkedid": "1700000000.1",
            "Context": "from-internal",
            "Exten": "s",
            "ChannelState": "6",
            "CallerIDNum": "201",
            "Duration": "00:00:55",
            "BridgeId": "b1",
        },
    ]
    replay.events.extend(replay.tracker.reconcile(channels, T0, lost_at=None))
    hangups = b"".join(
        b"Event: Hangup\r\nUniqueid: %s\r\nLinkedid: 1700000000.1\r\n\r\n" % uid
        for uid in (b"1700000000.2", b"1700000000.1")
    )
    replay.now = T0 + timedelta(seconds=30)
    replay.feed(hangups)
    replay.finish()
    [call] = replay.finals()
    assert call.direction is Direction.INBOUND
    assert call.number == "89161234567" and call.operators == ("201",)
    assert call.status is Status.ANSWERED
    # No CDR says when 201 answered: the talk is what the hub saw, and says it is approximate.
    assert call.duration_s == 30 and call.detail["talk_approximate"] is True
    assert call.total_s == 90 and call.detail["reconciled"] is True


def test_with_cdr_on_the_record_waits_for_the_cdr_then_gives_up() -> None:
    settings = SETTINGS.model_copy(update={"cdr": "on", "cdr_wait_s": 3.0})
    replay = Replay(settings)
    data = (AMI / "inbound_answered_ru_trunk_prefix.ami").read_bytes()
    without_cdr = b"\r\n\r\n".join(
        m for m in data.split(b"\r\n\r\n") if not m.startswith(b"Event: Cdr")
    )
    replay.feed(without_cdr)
    assert replay.finals() == []
    replay.events.extend(replay.tracker.sweep(T0 + timedelta(seconds=1)))
    assert replay.finals() == []
    replay.events.extend(replay.tracker.sweep(T0 + timedelta(seconds=4)))
    [call] = replay.finals()
    assert call.status is Status.ANSWERED


@pytest.mark.parametrize(
    ("channel", "context", "role", "extension"),
    [
        ("PJSIP/201-0000001a", "from-internal", Role.OPERATOR, "201"),
        ("SIP/201-00000abc", "from-internal", Role.OPERATOR, "201"),
        ("Local/201@operators-00000001;2", "operators", Role.OPERATOR, "201"),
        ("PJSIP/2015-0000001a", "default", Role.OPERATOR, "2015"),
        ("PJSIP/provider-00000003", "from-trunk", Role.TRUNK, None),
        ("Local/74951234567@from-trunk-00000000;1", "from-trunk", Role.TRUNK, None),
        ("Local/200@ivr-00000001;1", "ivr", Role.OTHER, None),
    ],
)
def test_channel_roles_come_from_contexts_and_names(
    channel: str, context: str, role: Role, extension: str | None
) -> None:
    assert Dialplan(SETTINGS, region="RU").classify(channel, context) == (role, extension)


def test_trunk_channel_pattern_wins_over_an_operator_context() -> None:
    settings = SETTINGS.model_copy(update={"trunk_channels": (r"^PJSIP/provider-",)})
    assert Dialplan(settings, region="RU").classify("PJSIP/provider-0001", "from-internal") == (
        Role.TRUNK,
        None,
    )


@pytest.mark.parametrize(
    ("dial_format", "prefix", "number", "dialled"),
    [
        ("local", "", "+79161234567", "89161234567"),
        ("local", "9", "+79161234567", "989161234567"),
        ("local", "", "+442079460958", "81044207946095" + "8"),
        ("e164", "", "+79161234567", "+79161234567"),
        ("e164_digits", "", "+79161234567", "79161234567"),
    ],
)
def test_numbers_are_dialled_the_way_the_pbx_expects(
    dial_format: str, prefix: str, number: str, dialled: str
) -> None:
    settings = SETTINGS.model_copy(update={"dial_format": dial_format, "dial_prefix": prefix})
    assert Dialplan(settings, region="RU").dial_string(number) == dialled


def test_the_outbound_prefix_is_not_part_of_the_customers_number() -> None:
    settings = SETTINGS.model_copy(update={"dial_prefix": "9"})
    plan = Dialplan(settings, region="RU")
    assert plan.dialled_number("provider/989161234567") == "89161234567"
    assert plan.dialled_number("89161234567@sim-pstn-out") == "89161234567"
    assert plan.dialled_number("PJSIP/989161234567@provider,30") == "89161234567"


def test_the_reader_decodes_exactly_the_events_the_tracker_reads() -> None:
    handled = set(Replay().tracker._handlers)
    assert CALL_EVENTS | {"VarSet"} == handled


def test_a_failed_click_to_call_is_one_failed_call_with_asterisks_reason() -> None:
    replay = Replay()
    replay.tracker.expect_originate("c2c-4", "c2c-0004", "209", "+79161234567")
    replay.play("outbound_click_to_call_failed", paced=True)
    [call] = replay.finals()
    assert call.direction is Direction.OUTBOUND and call.status is Status.FAILED
    assert call.request_id == "c2c-0004" and call.number == "+79161234567"
    assert call.detail["reason"] == "no such extension, or the operator's phone is unreachable"
    assert call.rang == ("209",) and call.operators == () and call.duration_s == 0
    assert replay.offers() == []


def test_a_failed_originate_of_another_connection_is_ignored() -> None:
    replay = Replay()  # nothing expected: the Originate was sent before a restart
    replay.play("outbound_click_to_call_failed", paced=True)
    [call] = replay.finals()
    assert call.status is Status.FAILED and "reason" not in call.detail
