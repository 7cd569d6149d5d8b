"""Calls on the card, on each database: one row per call, never backwards, missed-call follow-up."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from commhub.channels import CallOffered, CallsInProgress, CallUpdated
from commhub.domain.contacts import ContactDraft
from commhub.domain.interactions import Direction, Status
from commhub.domain.phones import parse_phone
from commhub.domain.roles import Role
from commhub.models import Contact, Interaction, MissedCall
from commhub.services import contacts, users
from commhub.services.calls import record_calls
from commhub.services.inbound import Inbound
from commhub.services.live import LiveFeed
from commhub.store import calls as call_store
from commhub.store.engine import SessionFactory

T0 = datetime(2026, 11, 22, 19, 41, 10, tzinfo=UTC)


def ringing(external_id: str = "pbx:1.0", number: str = "89161234567") -> CallUpdated:
    return CallUpdated(
        source="asterisk:pbx",
        external_id=external_id,
        direction=Direction.INBOUND,
        status=Status.RINGING,
        ended=False,
        started_at=T0,
        number=number,
        region="RU",
        did="74951234567",
        rang=("201",),
    )


def answered(call: CallUpdated) -> CallUpdated:
    return replace(
        call, status=Status.ANSWERED, answered_at=T0 + timedelta(seconds=2), operators=("201",)
    )


def ended(call: CallUpdated, talk: int = 8) -> CallUpdated:
    end = (call.answered_at or T0) + timedelta(seconds=talk)
    return replace(call, ended=True, ended_at=end, duration_s=talk if call.answered_at else 0)


async def setup(sessions: SessionFactory) -> tuple[int, int]:
    async with sessions() as session:
        operator = await users.create_user(
            session,
            username="olga",
            password="correct horse battery",
            role=Role.OPERATOR,
            extension="201",
        )
        await session.commit()
        view = await contacts.create_contact(
            sessions,
            ContactDraft(name="Ivan Petrov", phones=(parse_phone("+79161234567", "RU"),)),
            owner_id=None,
            source="test",
        )
        await session.commit()
    return operator.id, view.id


async def record(sessions: SessionFactory, *updates: CallUpdated, create: bool = False) -> None:
    async with sessions() as session:
        await record_calls(session, list(updates), default_region="US", create_unknown=create)
        await session.commit()


async def calls(sessions: SessionFactory) -> list[Interaction]:
    async with sessions() as session:
        return list(await session.scalars(select(Interaction).order_by(Interaction.id)))


async def test_a_call_is_one_row_from_ringing_to_its_end(sessions: SessionFactory) -> None:
    operator_id, contact_id = await setup(sessions)
    call = ringing()
    await record(sessions, call)
    await record(sessions, answered(call))
    await record(sessions, ended(answered(call)))
    [row] = await calls(sessions)
    assert row.contact_id == contact_id
    assert row.operator_id == operator_id
    assert row.status == "answered" and row.direction == "in"
    assert row.from_address == "+79161234567" and row.to_address == "74951234567"
    assert row.duration_s == 8
    assert row.ended_at == T0 + timedelta(seconds=10)
    assert row.extra["number_as_presented"] == "89161234567"


async def test_snapshots_never_move_a_call_backwards(sessions: SessionFactory) -> None:
    await setup(sessions)
    call = ringing()
    final = ended(answered(call))
    await record(sessions, final)
    await record(sessions, call, answered(call))
    [row] = await calls(sessions)
    assert row.status == "answered" and row.duration_s == 8 and row.ended_at is not None


async def test_a_batch_holding_the_same_call_twice_writes_one_row(sessions: SessionFactory) -> None:
    await setup(sessions)
    call = ringing()
    await record(sessions, call, answered(call), ended(answered(call)))
    assert len(await calls(sessions)) == 1


async def test_missed_call_waits_for_a_call_back(sessions: SessionFactory) -> None:
    _, contact_id = await setup(sessions)
    await record(sessions, ended(ringing("pbx:1.0")))
    await record(sessions, replace(ended(ringing("pbx:1.0")), status=Status.MISSED))
    async with sessions() as session:
        [(missed, call)] = await call_store.missed_page(
            session, state="open", operator_id=None, after=None, limit=10
        )
    assert call.status == "missed" and missed.contact_id == contact_id
    assert missed.number == "+79161234567"

    callback = CallUpdated(
        source="asterisk:pbx",
        external_id="pbx:2.0",
        direction=Direction.OUTBOUND,
        status=Status.ANSWERED,
        ended=True,
        started_at=T0 + timedelta(minutes=5),
        answered_at=T0 + timedelta(minutes=5, seconds=3),
        ended_at=T0 + timedelta(minutes=6),
        duration_s=57,
        number="+7 916 123-45-67",
        region="RU",
        operators=("201",),
    )
    await record(sessions, callback)
    async with sessions() as session:
        assert (
            await call_store.missed_page(
                session, state="open", operator_id=None, after=None, limit=9
            )
        ) == []
        closed = await session.scalar(select(MissedCall))
    assert closed is not None and closed.state == "called_back"
    assert closed.resolved_by_interaction_id is not None


async def test_a_dismissed_missed_call_leaves_the_open_list(sessions: SessionFactory) -> None:
    operator_id, _ = await setup(sessions)
    await record(sessions, replace(ended(ringing()), status=Status.MISSED))
    async with sessions() as session:
        missed = await session.scalar(select(MissedCall))
        assert missed is not None
        await call_store.dismiss_missed(session, missed.id, operator_id)
        await session.commit()
        assert (
            await call_store.missed_page(
                session, state="open", operator_id=None, after=None, limit=9
            )
        ) == []


async def test_unknown_caller_gets_a_contact_when_configured(sessions: SessionFactory) -> None:
    await setup(sessions)
    call = replace(ringing(number="+442079460958"), caller_name="JOHN SMITH")
    await record(sessions, call, create=True)
    [row] = await calls(sessions)
    async with sessions() as session:
        contact = await session.get(Contact, row.contact_id)
    assert contact is not None and contact.name == "JOHN SMITH"


async def test_unknown_caller_stays_unmatched_by_default(sessions: SessionFactory) -> None:
    await setup(sessions)
    await record(sessions, ringing(number="+442079460958"))
    [row] = await calls(sessions)
    assert row.contact_id is None
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 1


async def test_withheld_number_is_logged_without_a_contact(sessions: SessionFactory) -> None:
    await setup(sessions)
    await record(sessions, ended(answered(ringing(number="anonymous"))), create=True)
    [row] = await calls(sessions)
    assert row.contact_id is None and row.from_address == "anonymous"


async def test_a_call_the_store_refuses_is_set_aside_and_its_batch_is_stored(
    sessions: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    await setup(sessions)
    processor = Inbound(db=sessions, feed=LiveFeed(), region="RU")
    await processor.start()
    try:
        good = [ended(answered(ringing(f"pbx:{n}.0"))) for n in range(3)]
        poison = replace(ringing("pbx:bad.0"), detail={"not json": object()})
        for update in (good[0], poison, *good[1:]):
            processor.sink(update)
        await asyncio.wait_for(processor.drained(), 10)
    finally:
        await processor.stop()
    stored = await calls(sessions)
    assert sorted(c.external_id for c in stored) == [u.external_id for u in good]
    assert processor.calls.not_recorded == 1
    assert processor.calls.last_error is not None and "pbx:bad.0" in processor.calls.last_error
    assert "pbx:bad.0" in caplog.text


async def test_a_recording_is_linked_only_once_a_person_talked(sessions: SessionFactory) -> None:
    await setup(sessions)
    recorded = replace(ringing(), recording="/var/spool/asterisk/monitor/1.0.wav")
    missed = replace(ended(recorded), status=Status.MISSED)
    await record(sessions, recorded, missed)
    answered_call = replace(ringing("pbx:2.0"), recording="/var/spool/asterisk/monitor/2.0.wav")
    await record(sessions, answered_call)
    [_, ringing_row] = await calls(sessions)
    assert ringing_row.recording_ref is None  # not yet: nobody talked
    await record(sessions, ended(answered(replace(answered_call, recording=None))))
    first, second = await calls(sessions)
    assert first.recording_ref is None  # Asterisk's header-only file of a missed call
    assert second.recording_ref == "/var/spool/asterisk/monitor/2.0.wav"


async def test_a_snapshot_that_knows_less_erases_nothing(sessions: SessionFactory) -> None:
    operator_id, _ = await setup(sessions)
    call = answered(replace(ringing(), recording="/r/1.wav", queue="sales", request_id="c2c-1"))
    await record(sessions, call)
    # After a restart the PBX's channel list knows no DID, no recording, no queue, no answer
    # time, and may show the legs ringing: the stored facts stay.
    blind = replace(
        ringing(),
        did="",
        started_at=T0 + timedelta(seconds=1),
        rang=(),
        status=Status.RINGING,
        detail={"reconciled": True},
    )
    await record(sessions, blind)
    late = ended(replace(blind, status=Status.MISSED), talk=0)
    await record(sessions, replace(late, ended_at=T0 + timedelta(seconds=10)))
    [row] = await calls(sessions)
    assert row.status == "answered" and row.operator_id == operator_id
    assert row.to_address == "74951234567" and row.queue == "sales"
    assert row.recording_ref == "/r/1.wav" and row.extra["request_id"] == "c2c-1"
    assert row.occurred_at == T0 and row.answered_at == T0 + timedelta(seconds=2)
    assert row.ended_at == T0 + timedelta(seconds=10) and row.duration_s == 8
    assert row.extra["operators"] == ["201"] and row.extra["operator_talk"] == {"201": 8}
    async with sessions() as session:
        assert (
            await call_store.missed_page(
                session, state="open", operator_id=None, after=None, limit=10
            )
            == []
        )
    # An ended call is final: a replay of its ringing, or another end, changes nothing.
    await record(sessions, ringing(), replace(late, ended_at=T0 + timedelta(seconds=30)))
    [again] = await calls(sessions)
    assert again.ended_at == T0 + timedelta(seconds=10) and again.status == "answered"


async def test_a_call_already_over_never_pops(sessions: SessionFactory) -> None:
    operator_id, _ = await setup(sessions)
    feed = LiveFeed()
    subscription = feed.subscribe(operator_id)
    processor = Inbound(db=sessions, feed=feed, region="RU")
    await processor.start()
    try:
        processor.sink(ended(answered(ringing("pbx:9.0"))))
        await asyncio.wait_for(processor.drained(), 10)
        # After a restart the PBX lists a phone of that call still ringing.
        adopted = {"reconciled": True}
        processor.sink(
            CallOffered(call=replace(ringing("pbx:9.0"), detail=adopted), extension="201")
        )
        processor.sink(
            CallOffered(call=replace(ringing("pbx:10.0"), detail=adopted), extension="201")
        )
        for _ in range(100):
            if not subscription.queue.empty():
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
    finally:
        await processor.stop()
    offered = []
    while not subscription.queue.empty():
        message = subscription.queue.get_nowait()
        if message["type"] == "call.offered":
            offered.append(message["data"]["call"]["id"])
    assert offered == ["pbx:10.0"]


async def test_an_answered_call_from_another_country_leaves_a_missed_call_open(
    sessions: SessionFactory,
) -> None:
    await setup(sessions)
    await record(sessions, replace(ended(ringing("pbx:1.0")), status=Status.MISSED))
    # Same trailing digits, another country: not the customer who called.
    stranger = ended(answered(ringing("pbx:2.0", number="+44 916 1234567")))
    await record(sessions, replace(stranger, started_at=T0 + timedelta(minutes=5)))
    async with sessions() as session:
        [(missed, _)] = await call_store.missed_page(
            session, state="open", operator_id=None, after=None, limit=10
        )
    assert missed.number == "+79161234567"
    same = ended(answered(ringing("pbx:3.0", number="+7 916 123 45 67")))
    await record(sessions, replace(same, started_at=T0 + timedelta(minutes=9)))
    async with sessions() as session:
        assert not await call_store.missed_page(
            session, state="open", operator_id=None, after=None, limit=10
        )


async def test_a_call_whose_end_nobody_saw_ends_at_its_last_heartbeat(
    sessions: SessionFactory,
) -> None:
    await setup(sessions)
    processor = Inbound(db=sessions, feed=LiveFeed(), region="RU")
    await processor.start()
    try:
        processor.sink(answered(ringing("pbx:7.0")))  # answered at T0 + 2 s
        await asyncio.wait_for(processor.drained(), 10)
        for seconds in (10, 30):  # the link vouches for its calls while it follows them
            beat = CallsInProgress(
                source="asterisk:pbx",
                prefix="pbx:",
                external_ids=frozenset({"pbx:7.0"}),
                at=T0 + timedelta(seconds=seconds),
                complete=False,
            )
            processor.sink(beat)
        await asyncio.wait_for(processor.drained(), 10)
        # The hub was killed; an hour later the PBX's list no longer has the call.
        processor.sink(
            CallsInProgress(
                source="asterisk:pbx",
                prefix="pbx:",
                external_ids=frozenset(),
                at=T0 + timedelta(hours=1),
            )
        )
        await asyncio.wait_for(processor.drained(), 10)
    finally:
        await processor.stop()
    [row] = await calls(sessions)
    assert row.status == "answered" and row.ended_at == T0 + timedelta(seconds=30)
    assert row.duration_s == 28 and row.extra["operator_talk"] == {"201": 28}
    assert row.extra["approximate_end_s"] == 3600 - 30
