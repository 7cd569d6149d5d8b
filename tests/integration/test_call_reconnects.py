"""A call cut anywhere by a reconnect or a restart is stored as if nothing had happened.

For every recording and many cut points (seeded, so a failure replays), the
stream's first part goes through a tracker into the store by the real
inbound path; then either the same tracker (the link dropped) or a new
one (the hub restarted: nothing survives but the database) reads the PBX's
list of what was alive at that point, as Asterisk's ``CoreShowChannels``
gives it, and then the rest of the stream. The stored call must equal the
one the uninterrupted stream gives, field by field (talk to the second).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from commhub.channels import InboundEvent
from commhub.domain.roles import Role
from commhub.models import Interaction, MissedCall
from commhub.services import users
from commhub.services.inbound import Inbound
from commhub.services.live import LiveFeed
from commhub.store.engine import SessionFactory
from commhub_asterisk.config import PbxSettings
from commhub_asterisk.dialplan import Dialplan
from commhub_asterisk.tracker import CallTracker
from commhub_asterisk.wire import END, MessageReader, parse_headers

AMI = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "ami"
T0 = datetime(2026, 12, 3, 23, 0, 0, tzinfo=UTC)
RECORDINGS = (
    "inbound_answered_ru_trunk_prefix",
    "inbound_answered_e164_with_name",
    "inbound_answered_gb_national",
    "inbound_anonymous",
    "inbound_missed_no_answer",
    "inbound_queue_answered",
    "outbound_click_to_call_answered",
    "inbound_attended_transfer",
    "inbound_queue_early_answer",
    "inbound_burst_10",
)
CUTS = 12
SETTINGS = PbxSettings(
    username="commhub",
    secret="secret",  # type: ignore[arg-type]
    trunk_contexts=("from-trunk", "sim-pstn-out"),
    operator_contexts=("operators", "operators-noanswer", "from-internal"),
    region="RU",
    cdr_wait_s=0.5,
)


@dataclass(frozen=True)
class Message:
    at: datetime
    data: bytes


def messages(name: str) -> list[Message]:
    """The recording's messages, each stamped with the time its TCP read arrived."""
    raw = (AMI / f"{name}.ami").read_bytes()
    packets = json.loads((AMI / f"{name}.timing.json").read_text())["packets"]
    out: list[Message] = []
    pending = b""
    for seconds, offset, length in packets:
        blocks = (pending + raw[offset : offset + length]).split(END)
        pending = blocks.pop()
        out += [Message(T0 + timedelta(seconds=seconds), b + END) for b in blocks if b.strip()]
    return out


class Alive:
    """The channels a prefix of the stream leaves up, as CoreShowChannel rows."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, str]] = {}
        self.created: dict[str, datetime] = {}

    def follow(self, message: Message) -> None:
        if not message.data.startswith(b"Event: "):
            return
        h = parse_headers(message.data)
        uniqueid, event = h.get("Uniqueid", ""), h.get("Event")
        if event == "Newchannel":
            self.created[uniqueid] = message.at
            self.rows[uniqueid] = {
                key: h.get(key, "")
                for key in ("Channel", "Uniqueid", "Linkedid", "Context", "Exten")
            }
            self.rows[uniqueid].update(
                ChannelState=h.get("ChannelState", ""),
                CallerIDNum=h.get("CallerIDNum", ""),
                CallerIDName=h.get("CallerIDName", ""),
                BridgeId="",
            )
        elif event == "Hangup":
            self.rows.pop(uniqueid, None)
        elif uniqueid in self.rows:
            row = self.rows[uniqueid]
            if event == "Newstate":
                row["ChannelState"] = h.get("ChannelState", "")
            elif event == "NewCallerid":
                row["CallerIDNum"] = h.get("CallerIDNum", "")
            elif event == "BridgeEnter":
                row["BridgeId"] = h.get("BridgeUniqueid", "")
            elif event == "BridgeLeave":
                row["BridgeId"] = ""
            elif event == "Rename":
                row["Channel"] = h.get("Newname", row["Channel"])

    def listed(self, now: datetime) -> list[dict[str, str]]:
        rows = []
        for uniqueid, row in self.rows.items():
            age = int((now - self.created[uniqueid]).total_seconds())
            rows.append({**row, "Duration": f"{age // 3600:02}:{age // 60 % 60:02}:{age % 60:02}"})
        return rows


class Hub:
    """A tracker and the real inbound path writing to the test's database."""

    def __init__(self, processor: Inbound) -> None:
        self.processor = processor
        self.tracker = self.new_tracker()
        self.now = T0
        self.reader = MessageReader(on_event=self._event, on_other=lambda raw: None)

    @staticmethod
    def new_tracker() -> CallTracker:
        return CallTracker(
            source="asterisk:main",
            pbx="main",
            dialplan=Dialplan(SETTINGS, region="US"),
            cdr=SETTINGS.cdr,
            cdr_wait_s=SETTINGS.cdr_wait_s,
        )

    def _event(self, name: str, headers: dict[str, str]) -> None:
        self.sink(self.tracker.handle(name, headers, self.now))

    def sink(self, events: list[InboundEvent]) -> None:
        for event in events:
            self.processor.sink(event)

    async def feed(self, stream: list[Message]) -> None:
        for message in stream:
            self.now = message.at
            self.reader.feed(message.data)
            self.sink(self.tracker.sweep(self.now))
        await self.processor.drained()

    async def finish(self) -> None:
        self.sink(self.tracker.sweep(self.now + timedelta(seconds=5)))
        await self.processor.drained()


async def play(
    sessions: SessionFactory, name: str, cut: int | None = None, *, restart: bool = False
) -> dict[str, Interaction]:
    """Play ``name``; at message ``cut`` reconnect (or restart) with the PBX's channel list."""
    stream = messages(name)
    processor = Inbound(db=sessions, feed=LiveFeed(), region="RU")
    await processor.start()
    try:
        hub = Hub(processor)
        if cut is None:
            await hub.feed(stream)
        else:
            alive = Alive()
            for message in stream[:cut]:
                alive.follow(message)
            await hub.feed(stream[:cut])
            if restart:
                hub.tracker = Hub.new_tracker()
            lost_at = None if restart else hub.now
            hub.sink(hub.tracker.reconcile(alive.listed(hub.now), hub.now, lost_at=lost_at))
            await processor.drained()
            await hub.feed(stream[cut:])
        await hub.finish()
    finally:
        await processor.stop()
    async with sessions() as session:
        rows = (await session.scalars(select(Interaction))).all()
        missed = [m.interaction_id for m in (await session.scalars(select(MissedCall))).all()]
        session.expunge_all()
    for row in rows:
        row.extra = {**row.extra, "missed_entries": missed.count(row.id)}
    return {row.external_id: row for row in rows}


def record(row: Interaction) -> dict[str, Any]:
    """The call as a user sees it; times to the second."""
    extra = row.extra
    return {
        "status": row.status,
        "direction": row.direction,
        "from": row.from_address,
        "to": row.to_address,
        "operator_id": row.operator_id,
        "operators": extra.get("operators"),
        "queue": row.queue,
        "recording": row.recording_ref,
        "request_id": extra.get("request_id"),
        "missed_entries": extra.get("missed_entries"),
        "approximate": "approximate_end_s" in extra,
    }


def close(a: datetime | None, b: datetime | None, seconds: float) -> bool:
    if a is None or b is None:
        return a is b
    return abs((a - b).total_seconds()) <= seconds


def assert_same_call(got: Interaction, want: Interaction, where: str) -> None:
    assert record(got) == record(want), where
    assert close(got.occurred_at, want.occurred_at, 1), where
    assert close(got.answered_at, want.answered_at, 1), where
    assert close(got.ended_at, want.ended_at, 1), where
    assert abs((got.duration_s or 0) - (want.duration_s or 0)) <= 1, where
    talk, wanted = got.extra.get("operator_talk") or {}, want.extra.get("operator_talk") or {}
    assert talk.keys() == wanted.keys(), where
    assert all(abs(talk[k] - wanted[k]) <= 1 for k in wanted), where
    assert abs(got.extra["total_s"] - want.extra["total_s"]) <= 1, where


@pytest.fixture
async def operators(sessions: SessionFactory) -> None:
    async with sessions() as session:
        for name, extension in (("anna", "201"), ("boris", "202")):
            await users.create_user(
                session,
                username=name,
                password="correct horse battery",
                role=Role.OPERATOR,
                extension=extension,
            )
        await session.commit()


def cut_points(name: str) -> list[int]:
    """Seeded cut points across the stream, the first and last message included."""
    total = len(messages(name))
    rng = random.Random(f"{name}-cuts")
    return sorted({1, total - 1, *(rng.randrange(1, total) for _ in range(CUTS - 2))})


async def clear(sessions: SessionFactory) -> None:
    async with sessions() as session:
        for model in (MissedCall, Interaction):
            for row in (await session.scalars(select(model))).all():
                await session.delete(row)
        await session.commit()


@pytest.mark.parametrize("restart", [False, True], ids=["link-drop", "hub-restart"])
@pytest.mark.parametrize("name", RECORDINGS)
async def test_a_reconnect_anywhere_in_a_call_stores_the_uninterrupted_record(
    sessions: SessionFactory, operators: None, name: str, restart: bool
) -> None:
    want = await play(sessions, name)
    assert want and all(row.ended_at is not None for row in want.values())
    assert not any("approximate_end_s" in row.extra for row in want.values())
    for cut in cut_points(name):
        await clear(sessions)
        got = await play(sessions, name, cut, restart=restart)
        assert got.keys() == want.keys(), f"{name} cut after message {cut}"
        for external_id, row in want.items():
            assert_same_call(got[external_id], row, f"{name} cut after message {cut}")
