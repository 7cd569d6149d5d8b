"""SMS end to end: the API, the outbox, the paced sender, the Twilio adapter and its callbacks.

The hub runs as in the embedded default with one Twilio gateway pointed at a
Twilio-shaped API on loopback (the real twilio SDK talks to it); delivery
reports and inbound messages come back through the hub's own ``/hooks/``
route, signed as Twilio signs them.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import delete, select

import commhub_smpp
import commhub_twilio
from commhub.bootstrap import Hub, open_hub
from commhub.channels import ChannelContext
from commhub.config import Settings
from commhub.domain.contacts import ContactDraft
from commhub.domain.phones import parse_phone
from commhub.domain.roles import Role
from commhub.models import Interaction, Outbox, SmsMessage, SmsPart, Suppression
from commhub.services import contacts
from commhub.store.engine import SessionFactory
from commhub.web.app import create_app
from smsc import Smsc
from twilio_api import TwilioApi, new_sid, sign

Client = TestClient[Any, Any]
OUR_NUMBER = "+15005550006"
ANNA = "+79161234567"
ANNA_AS_DIALLED = "8 (916) 123-45-67"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def api() -> AsyncIterator[TwilioApi]:
    server = TwilioApi()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def anna(sessions: SessionFactory, accounts: dict[Role, Any]) -> int:
    view = await contacts.create_contact(
        sessions,
        ContactDraft(name="Анна Смирнова", phones=(parse_phone(ANNA, "RU"),)),
        owner_id=None,
        source="test",
    )
    return view.id


@pytest.fixture
async def hub(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    accounts: dict[Role, Any],
    api: TwilioApi,
) -> tuple[Client, Hub, str]:
    """The hub with one Twilio gateway; returns its client, the hub and its public URL."""
    return await open_twilio_hub(aiohttp_client, settings, api)


async def open_twilio_hub(
    aiohttp_client: Callable[..., Awaitable[Client]], settings: Settings, api: TwilioApi
) -> tuple[Client, Hub, str]:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    gateway = commhub_twilio.adapter(
        name="twilio",
        options={
            "account_sid": api.account_sid,
            "auth_token": api.auth_token,
            "numbers": [OUR_NUMBER],
            "api_base_url": api.base_url,
            "rate": 50,
            "timeout_s": 2,
        },
        context=ChannelContext(phone_region="RU", public_url=public),
    )
    opened: list[Hub] = []

    async def opener() -> Hub:
        opened.append(await open_hub(settings, channels=[gateway]))
        return opened[0]

    client = await aiohttp_client(create_app(opener), server_kwargs={"port": port})
    return client, opened[0], public


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not await check():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def read_sms(client: Client, auth: dict[str, str], sms_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/sms/{sms_id}", headers=auth)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def callback(
    public: str, api: TwilioApi, path: str, fields: dict[str, str], *, token: str | None = None
) -> tuple[int, str]:
    """POST a Twilio callback to the hub, signed as Twilio signs it (or with ``token``)."""
    url = f"{public}/hooks/twilio/{path}"
    signature = sign(token or api.auth_token, url, fields)
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=fields, headers={"X-Twilio-Signature": signature}) as r:
            return r.status, await r.text()


def incoming(text: str, sender: str = ANNA_AS_DIALLED, sid: str = "") -> dict[str, str]:
    sid = sid or new_sid("SM")
    return {
        "AccountSid": "",
        "MessageSid": sid,
        "SmsSid": sid,
        "From": sender,
        "To": OUR_NUMBER,
        "Body": text,
        "NumSegments": "1",
        "NumMedia": "0",
    }


async def test_an_sms_to_a_contact_goes_out_and_its_status_follows_the_reports(
    hub: tuple[Client, Hub, str], api: TwilioApi, accounts: dict[Role, Any], anna: int
) -> None:
    client, _, public = hub
    auth = accounts[Role.OPERATOR].auth
    text = "Анна, ваш заказ №4512 готов к выдаче. Ждём вас до 20:00."
    response = await client.post(
        "/api/v1/sms", json={"contact_id": anna, "text": text}, headers=auth
    )
    assert response.status == 202, await response.text()
    queued = await response.json()
    assert (queued["recipient"], queued["encoding"], queued["segments"]) == (ANNA, "ucs2", 1)
    assert queued["status"] == "queued" and queued["contact_id"] == anna

    async def handed_over() -> bool:
        return (await read_sms(client, auth, queued["id"]))["state"] == "sent"

    await until(handed_over)
    [request] = api.received
    assert (request.form["To"], request.form["From"], request.form["Body"]) == (
        ANNA,
        OUR_NUMBER,
        text,
    )
    assert request.form["StatusCallback"] == f"{public}/hooks/twilio/status"
    [sid] = api.messages

    for status in ("sent", "delivered"):
        assert (await api.report(sid, status))[0] == 200
    assert (await read_sms(client, auth, queued["id"]))["status"] == "delivered"
    for _ in range(5):  # repeated and late reports change nothing
        assert (await api.report(sid, "sent"))[0] == 200
    assert (await read_sms(client, auth, queued["id"]))["status"] == "delivered"


async def test_an_undelivered_report_puts_the_networks_reason_on_the_message(
    hub: tuple[Client, Hub, str], api: TwilioApi, accounts: dict[Role, Any], anna: int
) -> None:
    client, _, _ = hub
    auth = accounts[Role.MANAGER].auth
    response = await client.post(
        "/api/v1/sms", json={"to": ANNA_AS_DIALLED, "text": "Hi"}, headers=auth
    )
    sms = await response.json()
    assert sms["contact_id"] == anna  # the number in any format finds the card
    await until(lambda: _state_is(client, auth, sms["id"], "sent"))
    [sid] = api.messages
    assert (await api.report(sid, "undelivered", error_code="30003"))[0] == 200
    found = await read_sms(client, auth, sms["id"])
    assert found["status"] == "undelivered" and found["reason"].startswith("30003")


async def _state_is(client: Client, auth: dict[str, str], sms_id: int, state: str) -> bool:
    return (await read_sms(client, auth, sms_id))["state"] == state


async def test_a_refused_number_fails_at_once_and_a_throttled_send_is_retried(
    hub: tuple[Client, Hub, str], api: TwilioApi, accounts: dict[Role, Any]
) -> None:
    client, _, _ = hub
    auth = accounts[Role.OPERATOR].auth
    api.fail_next(400, code=21211)
    refused = await (
        await client.post("/api/v1/sms", json={"to": "+79160000001", "text": "Hi"}, headers=auth)
    ).json()
    await until(lambda: _state_is(client, auth, refused["id"], "failed"))
    failed = await read_sms(client, auth, refused["id"])
    assert failed["status"] == "failed" and "21211" in failed["reason"]
    assert failed["attempts"] == 1

    api.fail_next(429, retry_after="1")
    retried = await (
        await client.post("/api/v1/sms", json={"to": "+79160000002", "text": "Hi"}, headers=auth)
    ).json()
    await until(lambda: _state_is(client, auth, retried["id"], "sent"), timeout=15)
    assert (await read_sms(client, auth, retried["id"]))["attempts"] == 2


async def test_an_inbound_sms_lands_on_the_senders_card_once(
    hub: tuple[Client, Hub, str],
    api: TwilioApi,
    accounts: dict[Role, Any],
    anna: int,
    sessions: SessionFactory,
) -> None:
    _, _, public = hub
    fields = incoming("Перезвоните мне, пожалуйста")
    fields["AccountSid"] = api.account_sid
    for _ in range(3):  # Twilio retrying the same webhook
        status, body = await callback(public, api, "inbound", fields)
        assert status == 200 and "<Response" in body
    async with sessions() as session:
        rows = (
            await session.scalars(select(Interaction).where(Interaction.channel == "sms"))
        ).all()
    assert len(rows) == 1
    [row] = rows
    assert (row.contact_id, row.direction, row.status, row.from_address) == (
        anna,
        "in",
        "received",
        ANNA,
    )
    assert row.summary == "Перезвоните мне, пожалуйста"


async def test_stop_suppresses_the_number_and_start_lifts_it(
    hub: tuple[Client, Hub, str],
    api: TwilioApi,
    accounts: dict[Role, Any],
    anna: int,
    sessions: SessionFactory,
) -> None:
    client, _, public = hub
    auth = accounts[Role.OPERATOR].auth
    stop = incoming(" Стоп! ")
    stop["AccountSid"] = api.account_sid
    assert (await callback(public, api, "inbound", stop))[0] == 200
    async with sessions() as session:
        entry = await session.scalar(select(Suppression).where(Suppression.address == ANNA))
    assert entry is not None and entry.channel == "sms" and stop["MessageSid"] in entry.source
    refused = await client.post(
        "/api/v1/sms", json={"contact_id": anna, "text": "Скидка 20%"}, headers=auth
    )
    assert refused.status == 422
    assert "opted out" in (await refused.json())["detail"] or "opted out" in await refused.text()

    start = incoming("START")
    start["AccountSid"] = api.account_sid
    assert (await callback(public, api, "inbound", start))[0] == 200
    allowed = await client.post(
        "/api/v1/sms", json={"contact_id": anna, "text": "Скидка 20%"}, headers=auth
    )
    assert allowed.status == 202


async def test_a_forged_callback_is_refused_and_changes_nothing(
    hub: tuple[Client, Hub, str], api: TwilioApi, sessions: SessionFactory
) -> None:
    _, _, public = hub
    fields = incoming("STOP")
    fields["AccountSid"] = api.account_sid
    status, _ = await callback(public, api, "inbound", fields, token="not-the-auth-token")
    assert status == 403
    async with sessions() as session:
        assert await session.scalar(select(Suppression)) is None
        assert await session.scalar(select(Interaction)) is None


async def test_preview_counts_encoding_and_segments(
    hub: tuple[Client, Hub, str], accounts: dict[Role, Any]
) -> None:
    client, _, _ = hub
    auth = accounts[Role.OPERATOR].auth
    cases = {
        "x" * 160: ("gsm7", 1),
        "x" * 161: ("gsm7", 2),
        "ж" * 70: ("ucs2", 1),
        "ж" * 71: ("ucs2", 2),
    }
    for text, (encoding, segments) in cases.items():
        response = await client.post("/api/v1/sms/preview", json={"text": text}, headers=auth)
        body = await response.json()
        assert (body["encoding"], body["segments"]) == (encoding, segments), text


async def test_a_text_too_long_or_a_number_nobody_can_text_is_refused_with_the_field(
    hub: tuple[Client, Hub, str], accounts: dict[Role, Any]
) -> None:
    client, _, _ = hub
    auth = accounts[Role.OPERATOR].auth
    long = await client.post("/api/v1/sms", json={"to": ANNA, "text": "ж" * 700}, headers=auth)
    assert long.status == 422 and "segments" in await long.text()
    bad = await client.post("/api/v1/sms", json={"to": "12", "text": "Hi"}, headers=auth)
    assert bad.status == 422 and "to" in await bad.text()


@pytest.fixture
async def smsc() -> AsyncIterator[Smsc]:
    server = Smsc(receipt_delay_s=0.05)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def smpp_hub(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    accounts: dict[Role, Any],
    smsc: Smsc,
) -> tuple[Client, Hub]:
    gateway = commhub_smpp.adapter(
        name="smsc",
        options={
            "host": "127.0.0.1",
            "port": smsc.port,
            "system_id": smsc.system_id,
            "password": smsc.password,
            "numbers": ["+79001234567"],
            "rate": 100,
            "reconnect_min_s": 0.05,
        },
        context=ChannelContext(phone_region="RU"),
    )
    opened: list[Hub] = []

    async def opener() -> Hub:
        opened.append(await open_hub(settings, channels=[gateway]))
        return opened[0]

    client = await aiohttp_client(create_app(opener))
    await smsc.wait_until(lambda: smsc.bound == 1)
    return client, opened[0]


async def test_a_long_sms_over_smpp_is_delivered_when_the_receipts_of_all_its_parts_are(
    smpp_hub: tuple[Client, Hub], smsc: Smsc, accounts: dict[Role, Any], anna: int
) -> None:
    client, _ = smpp_hub
    auth = accounts[Role.OPERATOR].auth
    text = "Dear Anna, " + "your order is ready for pickup at our Tverskaya store. " * 4
    response = await client.post(
        "/api/v1/sms", json={"contact_id": anna, "text": text}, headers=auth
    )
    sms = await response.json()
    assert (sms["encoding"], sms["segments"]) == ("gsm7", 2)

    async def delivered() -> bool:
        return (await read_sms(client, auth, sms["id"]))["status"] == "delivered"

    await until(delivered)
    assert len(smsc.submits) == 2
    assert "".join(part.text for part in smsc.submits) == text


async def test_an_sms_from_a_phone_over_smpp_lands_on_the_card(
    smpp_hub: tuple[Client, Hub], smsc: Smsc, anna: int, sessions: SessionFactory
) -> None:
    smsc.send_mo("Перезвоните после обеда", sender="79161234567", parts=2)

    async def filed() -> bool:
        async with sessions() as session:
            row = await session.scalar(select(Interaction).where(Interaction.channel == "sms"))
        return row is not None and row.contact_id == anna

    await until(filed)
    async with sessions() as session:
        [row] = (await session.scalars(select(Interaction))).all()
    assert row.summary == "Перезвоните после обеда"


async def test_an_idempotency_key_used_for_another_text_is_refused(
    hub: tuple[Client, Hub, str], api: TwilioApi, accounts: dict[Role, Any], anna: int
) -> None:
    client, _, _ = hub
    auth = {**accounts[Role.OPERATOR].auth, "Idempotency-Key": "remind-1"}
    first = await client.post("/api/v1/sms", json={"contact_id": anna, "text": "A"}, headers=auth)
    assert first.status == 202
    queued = await first.json()
    same = await client.post("/api/v1/sms", json={"contact_id": anna, "text": "A"}, headers=auth)
    assert same.status == 200 and (await same.json())["id"] == queued["id"]
    other = await client.post("/api/v1/sms", json={"contact_id": anna, "text": "B"}, headers=auth)
    assert other.status == 422
    assert (await other.json())["errors"][0]["field"] == "Idempotency-Key"
    await until(lambda: _state_is(client, auth, queued["id"], "sent"))
    assert [r.form["Body"] for r in api.received] == ["A"]


async def _cut_off(sessions: SessionFactory, interaction_id: int) -> None:
    """Leave a sent SMS as a process killed mid-hand-over leaves it: held by a dead holder,
    with no gateway id written down."""
    async with sessions() as session:
        row = await session.scalar(select(Outbox).where(Outbox.interaction_id == interaction_id))
        assert row is not None
        row.state, row.sent_at, row.reply = "sending", None, None
        row.claimed_by = "gone-host:4242:dead:sms:twilio"
        row.claimed_at = row.lease_until = row.created_at - timedelta(minutes=10)
        interaction = await session.get(Interaction, interaction_id)
        assert interaction is not None
        interaction.status = "queued"
        await session.execute(
            delete(SmsPart).where(
                SmsPart.sms_id.in_(
                    select(SmsMessage.id).where(SmsMessage.interaction_id == interaction_id)
                )
            )
        )
        await session.commit()


@pytest.mark.parametrize("twilio_took_it", [True, False])
async def test_an_sms_cut_off_mid_send_is_settled_by_asking_twilio_and_sent_once(
    hub: tuple[Client, Hub, str],
    api: TwilioApi,
    accounts: dict[Role, Any],
    anna: int,
    sessions: SessionFactory,
    twilio_took_it: bool,
) -> None:
    client, _, _ = hub
    auth = accounts[Role.OPERATOR].auth
    response = await client.post(
        "/api/v1/sms", json={"contact_id": anna, "text": "Cut off"}, headers=auth
    )
    sms = await response.json()
    await until(lambda: _state_is(client, auth, sms["id"], "sent"))
    await _cut_off(sessions, sms["id"])
    if not twilio_took_it:
        api.messages.clear()
    api.received.clear()

    async def settled() -> bool:
        found = await read_sms(client, auth, sms["id"])
        return bool(found["state"] == "sent" and found["status"] == "queued")

    await until(settled, 20)
    sent_again = [] if twilio_took_it else ["Cut off"]
    assert [r.form["Body"] for r in api.received] == sent_again
    [sid] = api.messages
    assert (await api.report(sid, "delivered"))[0] == 200
    assert (await read_sms(client, auth, sms["id"]))["status"] == "delivered"


async def test_an_sms_cut_off_mid_send_is_settled_by_the_smscs_receipt_not_sent_again(
    smpp_hub: tuple[Client, Hub],
    smsc: Smsc,
    accounts: dict[Role, Any],
    anna: int,
    sessions: SessionFactory,
) -> None:
    """SMPP cannot be asked; its receipt, matched by phone and quoted text, is the proof."""
    client, _ = smpp_hub
    auth, manager = accounts[Role.OPERATOR].auth, accounts[Role.MANAGER].auth
    text = "Your parcel 5531 is waiting at the Tverskaya store"
    response = await client.post(
        "/api/v1/sms", json={"contact_id": anna, "text": text}, headers=auth
    )
    sms = await response.json()
    await until(lambda: _status_is(client, auth, sms["id"], "delivered"))
    await _cut_off(sessions, sms["id"])

    async def in_doubt() -> bool:
        listed = await client.get("/api/v1/outbox?channel=sms", headers=manager)
        return bool((await listed.json())["items"])

    await until(in_doubt, 20)
    assert (await read_sms(client, auth, sms["id"]))["status"] == "uncertain"
    receipt = (
        "id:7777 sub:001 dlvrd:001 submit date:2612041200 done date:2612041201 "
        f"stat:DELIVRD err:000 text:{text[:20]}"
    )
    smsc.deliver(ANNA[1:], "79001234567", receipt.encode("ascii"), esm_class=0x04)

    await until(lambda: _status_is(client, auth, sms["id"], "delivered"))
    assert (await read_sms(client, auth, sms["id"]))["state"] == "sent"
    assert not await in_doubt()
    assert len(smsc.submits) == 1  # never handed over twice


async def _status_is(client: Client, auth: dict[str, str], sms_id: int, status: str) -> bool:
    return (await read_sms(client, auth, sms_id))["status"] == status


async def test_an_sms_twilio_never_answers_is_held_in_doubt_not_resent_then_found(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    accounts: dict[Role, Any],
    api: TwilioApi,
    anna: int,
) -> None:
    """A timeout after the request went out is not a refusal: Twilio made the message late."""
    short_lease = settings.model_copy(update={"outbox_lease_s": 2.0})
    client, _, _ = await open_twilio_hub(aiohttp_client, short_lease, api)
    auth = accounts[Role.OPERATOR].auth
    api.stall_next(3.0)  # beyond the gateway's 2 s timeout; Twilio then makes the message
    response = await client.post(
        "/api/v1/sms", json={"contact_id": anna, "text": "Late answer"}, headers=auth
    )
    sms = await response.json()
    await until(lambda: _status_is(client, auth, sms["id"], "uncertain"))
    found = await read_sms(client, auth, sms["id"])
    assert found["state"] == "uncertain" and "no answer within 2 s" in found["reason"]

    await until(lambda: _state_is(client, auth, sms["id"], "sent"), 30)
    assert len(api.received) == 1  # asked Twilio's list, never sent again
    [sid] = api.messages
    assert (await api.report(sid, "delivered"))[0] == 200
    assert (await read_sms(client, auth, sms["id"]))["status"] == "delivered"
