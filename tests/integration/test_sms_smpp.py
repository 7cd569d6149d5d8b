"""The SMPP gateway against a loopback SMSC speaking real SMPP 3.4 PDUs.

The adapter is built through its entry point the way the hub builds it, and
driven through the port: ``send`` for outbound messages, ``start(sink)``
with a sink that plays the hub (collecting events and settling them, or
holding or failing them). Every assertion is about what the SMSC received
and answered, or what the hub got: ids, states, texts, statuses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from commhub.channels import (
    ChannelConfigError,
    ChannelContext,
    ChannelUnavailable,
    DeliveryState,
    InboundEvent,
    OutboundSms,
    SendRejected,
    SendThrottled,
    SmsReceived,
    SmsReport,
)
from commhub_smpp import SmppGateway, adapter
from smsc import DELIVER_SM, ENQUIRE_LINK, RESP, Smsc

CONTEXT = ChannelContext(phone_region="RU", public_url="https://hub.example.com")
OURS = "+79001234567"
CUSTOMER = "+79161234567"
LATIN_200 = ("Your order 12345 has shipped and will arrive on Friday. " * 4)[:200]
CYRILLIC = "Здравствуйте! Ваш заказ 12345 отправлен и прибудет в пятницу."
ROK, RX_T_APPN = 0x00, 0x64


@dataclass
class Hub:
    """The core's side of the sink: keeps every event and settles it as told."""

    settle: Literal["ok", "hold", "fail"] = "ok"
    events: list[InboundEvent] = field(default_factory=list)

    def __call__(self, event: InboundEvent) -> None:
        self.events.append(event)
        settled = getattr(event, "settled", None)
        if settled is None or self.settle == "hold":
            return
        if self.settle == "ok":
            settled.set_result(None)
        else:
            settled.set_exception(RuntimeError("the database is down"))

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]

    async def wait(self, kind: type[Any], count: int, timeout: float = 5.0) -> list[Any]:
        async def poll() -> None:
            while len(self.of(kind)) < count:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(poll(), timeout)
        return self.of(kind)


def options(smsc: Smsc, **overrides: Any) -> dict[str, Any]:
    """The channel's options as an admin writes them, with intervals short enough for tests."""
    return {
        "host": "127.0.0.1",
        "port": smsc.port,
        "system_id": "commhub",
        "password": "s3cr3t",
        "numbers": [OURS, "Shop"],
        "enquire_link_s": 5.0,
        "response_timeout_s": 1.0,
        "settle_timeout_s": 1.0,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.2,
        **overrides,
    }


def sms(text: str, *, recipient: str = CUSTOMER, sender: str = "") -> OutboundSms:
    return OutboundSms(key="outbox-1", sender=sender, recipient=recipient, text=text)


@pytest.fixture
async def smsc() -> AsyncIterator[Smsc]:
    server = Smsc()
    await server.start()
    yield server
    await server.close()


@asynccontextmanager
async def running(smsc: Smsc, hub: Hub, **overrides: Any) -> AsyncIterator[SmppGateway]:
    gateway = adapter(name="smsc1", options=options(smsc, **overrides), context=CONTEXT)
    await gateway.start(hub)
    try:
        yield gateway
    finally:
        await gateway.stop()


async def bound(gateway: SmppGateway, timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not gateway.health().connected:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def test_long_latin_text_goes_as_two_gsm7_parts_with_one_concatenation_reference(
    smsc: Smsc,
) -> None:
    async with running(smsc, Hub()) as gateway:
        await bound(gateway)
        accepted = await gateway.send(sms(LATIN_200))
        again = await gateway.send(sms(LATIN_200))

    first, second = smsc.submits[:2]
    assert accepted.state is DeliveryState.SENT
    assert accepted.gateway_ids == (first.message_id, second.message_id)
    assert [s.esm_class for s in (first, second)] == [0x40, 0x40]
    assert [s.data_coding for s in (first, second)] == [0, 0]
    assert first.udh[:3] == second.udh[:3] == bytes((5, 0, 3))
    reference = first.concatenation[0] if first.concatenation else -1
    assert [first.concatenation, second.concatenation] == [(reference, 2, 1), (reference, 2, 2)]
    assert (len(first.text), first.text + second.text) == (153, LATIN_200)
    assert first.source == (1, 1, "79001234567")
    assert first.destination == (1, 1, "79161234567")
    assert first.registered_delivery == 1
    assert len(again.gateway_ids) == 2
    next_reference = smsc.submits[2].concatenation
    assert next_reference is not None and next_reference[0] == (reference + 1) % 256


async def test_cyrillic_text_goes_as_ucs2_from_an_alphanumeric_sender(smsc: Smsc) -> None:
    async with running(smsc, Hub()) as gateway:
        await bound(gateway)
        accepted = await gateway.send(sms(CYRILLIC, sender="Shop"))

    (submit,) = smsc.submits
    assert accepted.gateway_ids == (submit.message_id,)
    assert (submit.data_coding, submit.esm_class, submit.udh) == (8, 0, b"")
    assert submit.text == CYRILLIC
    assert submit.source == (5, 0, "Shop")


async def test_receipts_report_each_message_by_its_submitted_id(smsc: Smsc) -> None:
    smsc.outcomes = {"79161230002": ("UNDELIV", "001"), "79161230003": ("UNKNOWN", "000")}
    hub = Hub()
    async with running(smsc, hub) as gateway:
        await bound(gateway)
        delivered = await gateway.send(sms("Hello", recipient="+79161230001"))
        failed = await gateway.send(sms("Hello", recipient="+79161230002"))
        await gateway.send(sms("Hello", recipient="+79161230003"))
        reports = await hub.wait(SmsReport, 2)
        await smsc.wait_until(lambda: len(_answers(smsc, DELIVER_SM)) == 3)

    by_id = {report.gateway_id: report for report in reports}
    assert by_id.keys() == {delivered.gateway_ids[0], failed.gateway_ids[0]}
    assert by_id[delivered.gateway_ids[0]].state is DeliveryState.DELIVERED
    assert by_id[delivered.gateway_ids[0]].reason == ""
    assert by_id[failed.gateway_ids[0]].state is DeliveryState.UNDELIVERED
    assert by_id[failed.gateway_ids[0]].reason == "UNDELIV err:001"
    assert {report.source for report in reports} == {"smsc1"}
    assert _answers(smsc, DELIVER_SM) == [ROK, ROK, ROK]  # UNKNOWN: answered, nothing changed
    # The phone and the text's start: what ties a receipt to a message whose id a crash lost
    assert by_id[failed.gateway_ids[0]].handset == "+79161230002"
    assert by_id[failed.gateway_ids[0]].text_head == "Hello"


@pytest.mark.parametrize(
    ("smsc_ids", "setting"),
    [
        ({"hex_ids": True, "receipt_ids": "decimal"}, "decimal"),
        ({"hex_ids": True, "receipt_ids": "padded"}, "as_submitted"),
        ({"hex_ids": True, "receipt_ids": "decimal", "receipt_tlvs": True}, "as_submitted"),
    ],
    ids=["hex-then-decimal", "case-and-zeros", "receipted-message-id-tlv"],
)
async def test_a_receipt_naming_the_id_another_way_still_matches(
    smsc: Smsc, smsc_ids: dict[str, Any], setting: str
) -> None:
    for name, value in smsc_ids.items():
        setattr(smsc, name, value)
    hub = Hub()
    async with running(smsc, hub, receipt_ids=setting) as gateway:
        await bound(gateway)
        accepted = await gateway.send(sms("Hello"))
        (report,) = await hub.wait(SmsReport, 1)

    assert smsc.submits[0].message_id == "2A0F00"
    assert report.gateway_id == accepted.gateway_ids[0] == "2a0f00"
    assert report.state is DeliveryState.DELIVERED


async def test_inbound_messages_arrive_whole_plain_or_in_parts(smsc: Smsc) -> None:
    hub = Hub()
    long_cyrillic = CYRILLIC * 2
    long_latin = LATIN_200 + " Thanks!"
    async with running(smsc, hub) as gateway:
        await bound(gateway)
        sequences = smsc.send_mo("STOP please")
        sequences += smsc.send_mo(long_cyrillic, parts=2, reference=7)
        sequences += smsc.send_mo(long_latin, parts=3, reference=300, wide_reference=True)
        received = await hub.wait(SmsReceived, 3)
        answers = [await smsc.answer_to(sequence) for sequence in sequences]

    assert [(m.text, m.parts) for m in received] == [
        ("STOP please", 1),
        (long_cyrillic, 2),
        (long_latin, 3),
    ]
    assert {(m.sender, m.recipient, m.source) for m in received} == {(CUSTOMER, OURS, "smsc1")}
    assert len({m.external_id for m in received}) == 3
    assert answers == [ROK] * 6


async def test_an_inbound_message_delivered_again_keeps_its_id(smsc: Smsc) -> None:
    hub = Hub()
    async with running(smsc, hub) as gateway:
        await bound(gateway)
        smsc.send_mo("Call me back")
        smsc.send_mo("Call me back")
        smsc.send_mo("Call me back", sender="79161239999")
        first, again, other = await hub.wait(SmsReceived, 3)

    assert first.external_id == again.external_id != other.external_id


async def test_deliver_sm_is_answered_only_once_the_hub_stored_it(smsc: Smsc) -> None:
    hub = Hub(settle="hold")
    async with running(smsc, hub) as gateway:
        await bound(gateway)
        (held,) = smsc.send_mo("Hello")
        first_part, last_part = smsc.send_mo(CYRILLIC * 2, parts=2)
        events = await hub.wait(SmsReceived, 2)
        assert await smsc.answer_to(first_part) == ROK  # a part alone is only kept in memory
        await asyncio.sleep(0.2)
        assert held not in smsc.answers and last_part not in smsc.answers

        events[0].settled.set_result(None)
        events[1].settled.set_exception(RuntimeError("the database is down"))
        assert await smsc.answer_to(held) == ROK
        assert await smsc.answer_to(last_part) == RX_T_APPN

        # The SMSC delivers again the part it got the error for; the first is still kept.
        (retry,) = smsc.send_mo(CYRILLIC * 2, parts=2, only=(2,))
        whole_again = (await hub.wait(SmsReceived, 3))[2]
        assert (whole_again.text, whole_again.external_id) == (CYRILLIC * 2, events[1].external_id)
        whole_again.settled.set_result(None)
        assert await smsc.answer_to(retry) == ROK


async def test_deliver_sm_gets_a_temporary_error_when_the_hub_is_too_slow(smsc: Smsc) -> None:
    async with running(smsc, Hub(settle="hold"), settle_timeout_s=0.2) as gateway:
        await bound(gateway)
        (sequence,) = smsc.send_mo("Hello")
        assert await smsc.answer_to(sequence) == RX_T_APPN


async def test_enquire_link_keeps_the_link_alive_both_ways(smsc: Smsc) -> None:
    async with running(smsc, Hub(), enquire_link_s=0.05) as gateway:
        await bound(gateway)
        await smsc.wait_until(lambda: smsc.enquire_links >= 3)
        sequence = smsc.enquire_link()
        assert await smsc.answer_to(sequence) == ROK
        assert smsc.answers[sequence][0] == ENQUIRE_LINK | RESP
        assert gateway.health().reconnects == 0


async def test_a_dropped_connection_is_reconnected_and_sending_works_again(smsc: Smsc) -> None:
    async with running(smsc, Hub()) as gateway:
        await bound(gateway)
        smsc.silent = 1
        waiting = asyncio.create_task(gateway.send(sms("Hello")))
        await smsc.wait_until(lambda: smsc.silent == 0)
        smsc.drop()
        with pytest.raises(ChannelUnavailable):
            await waiting

        await smsc.wait_until(lambda: len(smsc.binds) == 2 and smsc.bound == 1)
        await bound(gateway)
        accepted = await gateway.send(sms("Hello again"))
        health = gateway.health()

    assert accepted.gateway_ids == (smsc.submits[-1].message_id,)
    assert health.connected and health.reconnects >= 1 and health.error is None


async def test_an_unbind_from_the_smsc_is_answered_and_the_gateway_binds_again(
    smsc: Smsc,
) -> None:
    async with running(smsc, Hub()) as gateway:
        await bound(gateway)
        sequence = smsc.unbind()
        assert await smsc.answer_to(sequence) == ROK
        await smsc.wait_until(lambda: len(smsc.binds) == 2 and smsc.bound == 1)
        await bound(gateway)
        assert (await gateway.send(sms("Hello"))).gateway_ids


async def test_an_unanswered_submit_is_a_temporary_failure(smsc: Smsc) -> None:
    smsc.silent = 1
    async with running(smsc, Hub(), response_timeout_s=0.2) as gateway:
        await bound(gateway)
        with pytest.raises(ChannelUnavailable, match="did not answer submit_sm"):
            await gateway.send(sms("Hello"))


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (0x58, SendThrottled, "ESME_RTHROTTLED"),
        (0x14, SendThrottled, "ESME_RMSGQFUL"),
        (0x0B, SendRejected, "ESME_RINVDSTADR"),
        (0x0A, SendRejected, "ESME_RINVSRCADR"),
        (0x08, ChannelUnavailable, "ESME_RSYSERR"),
    ],
)
async def test_a_refused_submit_raises_what_the_status_means(
    smsc: Smsc, status: int, error: type[Exception], words: str
) -> None:
    smsc.refuse = {"79161230009": status}
    async with running(smsc, Hub()) as gateway:
        await bound(gateway)
        with pytest.raises(error, match=words) as raised:
            await gateway.send(sms("Hello", recipient="+79161230009"))
        assert type(raised.value) is error
        assert (await gateway.send(sms("Hello"))).gateway_ids


async def test_throttling_passes_and_the_next_message_goes(smsc: Smsc) -> None:
    smsc.throttle = 1
    async with running(smsc, Hub()) as gateway:
        await bound(gateway)
        with pytest.raises(SendThrottled):
            await gateway.send(sms("Hello"))
        accepted = await gateway.send(sms("Hello"))
    assert accepted.gateway_ids == (smsc.submits[0].message_id,)


async def test_sending_needs_a_bind_and_a_number(smsc: Smsc) -> None:
    gateway = adapter(name="smsc1", options=options(smsc), context=CONTEXT)
    with pytest.raises(ChannelUnavailable, match="not bound"):
        await gateway.send(sms("Hello"))
    async with running(smsc, Hub()) as gateway:
        await bound(gateway)
        with pytest.raises(SendRejected, match="E.164"):
            await gateway.send(sms("Hello", recipient="8 916 123-45-67"))
        with pytest.raises(SendRejected, match="sender"):
            await gateway.send(sms("Hello", sender="A very long sender id"))
    assert smsc.submits == []


async def test_several_sends_in_flight_stay_within_the_window(smsc: Smsc) -> None:
    smsc.submit_delay_s = 0.05
    async with running(smsc, Hub(), window=2) as gateway:
        await bound(gateway)
        results = await asyncio.gather(*(gateway.send(sms(f"Hello {n}")) for n in range(6)))
    assert len({result.gateway_ids for result in results}) == 6
    assert smsc.max_in_flight == 2


async def test_a_wrong_password_shows_in_health_is_retried_slowly_and_never_logged(
    smsc: Smsc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wr0ng-pw"
    async with running(
        smsc, Hub(), password=secret, reconnect_min_s=0.01, reconnect_max_s=1.0
    ) as gateway:
        await smsc.wait_until(lambda: gateway.health().error is not None)
        await asyncio.sleep(0.3)
        health = gateway.health()

    assert not health.connected
    assert health.error is not None and "ESME_RINVPASWD" in health.error
    assert len(smsc.binds) == 1  # the next try waits reconnect_max_s, not the short backoff
    assert secret not in caplog.text and secret not in repr(health)


async def test_a_malformed_pdu_gets_generic_nack_and_the_link_stays_up(smsc: Smsc) -> None:
    hub = Hub()
    async with running(smsc, hub) as gateway:
        await bound(gateway)
        sequence = smsc.send_malformed()
        await smsc.wait_until(lambda: bool(smsc.nacks))
        smsc.send_mo("Still there?")
        (received,) = await hub.wait(SmsReceived, 1)
        accepted = await gateway.send(sms("Yes"))
        health = gateway.health()

    assert smsc.nacks == [(sequence, 0x02)]  # ESME_RINVCMDLEN
    assert received.text == "Still there?" and accepted.gateway_ids
    assert health.reconnects == 0 and len(smsc.binds) == 1


async def test_stop_unbinds_and_closes(smsc: Smsc) -> None:
    async with running(smsc, Hub()) as gateway:
        await bound(gateway)
    await smsc.wait_until(lambda: smsc.bound == 0)
    assert smsc.unbinds == 1
    assert not gateway.health().connected


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"port": 0}, "port"),
        ({"system_id": "a-system-id-too-long"}, "system_id"),
        ({"numbers": ["+7 916"]}, "numbers"),
        ({"receipt_ids": "octal"}, "receipt_ids"),
        ({"reconnect_min_s": 5, "reconnect_max_s": 1}, "reconnect_max_s"),
        ({"password": "пароль"}, "password"),
    ],
)
async def test_bad_settings_name_the_setting_and_not_the_password(
    smsc: Smsc, overrides: dict[str, Any], setting: str
) -> None:
    with pytest.raises(ChannelConfigError, match=setting) as raised:
        adapter(name="smsc1", options=options(smsc, **overrides), context=CONTEXT)
    assert "s3cr3t" not in str(raised.value) and "пароль" not in str(raised.value)


def _answers(smsc: Smsc, command_id: int) -> list[int]:
    return [status for cid, status in smsc.answers.values() if cid == command_id | RESP]
