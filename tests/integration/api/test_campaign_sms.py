"""SMS and mixed campaigns: e-mail where it may go, SMS to the others, STOP honoured mid-send.

The hub has a mailbox (aiosmtpd on loopback) and a Twilio gateway (a
Twilio-shaped API on loopback, reached by the real twilio SDK); inbound SMS
come back through the hub's own signed webhook, as in production.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

import commhub_kannel
import commhub_twilio
from commhub.bootstrap import Hub, open_hub
from commhub.channels import ChannelContext
from commhub.config import Settings
from commhub.domain.contacts import ConsentChoice, ContactDraft
from commhub.domain.phones import parse_phone
from commhub.domain.roles import Role
from commhub.models import Contact, MessageTemplate, Outbox
from commhub.services import contacts
from commhub.store.engine import SessionFactory
from commhub.web.app import create_app
from commhub_email import adapter as mailbox_adapter
from kannel import KannelServer, kannel_binaries
from smtp_sink import SmtpSink
from static_lists import static_list
from twilio_api import TwilioApi, new_sid, sign

Client = TestClient[Any, Any]
OUR_NUMBER = "+15005550006"


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
async def sink() -> AsyncIterator[SmtpSink]:
    server = SmtpSink()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def hub(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    accounts: dict[Role, Any],
    api: TwilioApi,
    sink: SmtpSink,
) -> tuple[Client, dict[str, str], str]:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    context = ChannelContext(phone_region="RU", public_url=public)
    gateway = commhub_twilio.adapter(
        name="twilio",
        options={
            "account_sid": api.account_sid,
            "auth_token": api.auth_token,
            "numbers": [OUR_NUMBER],
            "api_base_url": api.base_url,
            "rate": 20,
            "timeout_s": 2,
        },
        context=context,
    )
    mailbox = mailbox_adapter(
        name="news",
        options={
            "address": "news@example.com",
            "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "plain"},
        },
        context=context,
    )
    opened: list[Hub] = []

    async def opener() -> Hub:
        opened.append(
            await open_hub(
                settings.model_copy(update={"public_url": public}), channels=[gateway, mailbox]
            )
        )
        return opened[0]

    client = await aiohttp_client(create_app(opener), server_kwargs={"port": port})
    return client, accounts[Role.MARKETER].auth, public


def zone_at(hour: int) -> str:
    """A zone where it is ``hour`` o'clock now (give or take the minutes)."""
    offset = (hour - datetime.now(UTC).hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def phone(n: int) -> str:
    return f"+7495{1000000 + n:07d}"


async def audience(
    sessions: SessionFactory, *, with_email: int, sms_only: int, asleep: int = 0
) -> tuple[int, int, int]:
    """A static list; the first ``with_email`` may get e-mail, the next ``sms_only`` only SMS.

    Everyone lives where it is midday now, but the last ``asleep``, for whom it is 02:00.
    """
    ids = []
    for n in range(with_email + sms_only):
        emailed = n < with_email
        view = await contacts.create_contact(
            sessions,
            ContactDraft(
                name=f"Клиент {n}",
                emails=(f"c{n}@client.example",) if emailed else (),
                phones=(parse_phone(phone(n), "RU"),),
                consents=(
                    ConsentChoice("email", "marketing", True),
                    ConsentChoice("sms", "marketing", True),
                ),
            ),
            owner_id=None,
            source="test",
        )
        ids.append(view.id)
    async with sessions() as session:
        for n, contact_id in enumerate(ids):
            night = n >= len(ids) - asleep
            await session.execute(
                update(Contact)
                .where(Contact.id == contact_id)
                .values(time_zone=zone_at(2 if night else 12))
            )
        await session.commit()
    mail = MessageTemplate(
        name="Mail", channel="email", subject="Hi", text="Hello {{ contact.name }}"
    )
    text = MessageTemplate(
        name="Text", channel="sms", text="{{ contact.first_name }}, скидка 10% до пятницы"
    )
    segment_id, (mail_id, text_id) = await static_list(sessions, "Mixed", ids, mail, text)
    return segment_id, mail_id, text_id


async def run(client: Client, auth: dict[str, str], **body: Any) -> int:
    created = await client.post(
        "/api/v1/campaigns",
        json={"name": "Sale", "mailbox": "news", "sms_gateway": "twilio", **body},
        headers=auth,
    )
    assert created.status == 201, await created.text()
    campaign_id = int((await created.json())["id"])
    started = await client.post(f"/api/v1/campaigns/{campaign_id}/start", headers=auth)
    assert started.status == 200, await started.text()
    return campaign_id


async def state_of(
    client: Client, auth: dict[str, str], campaign_id: int, state: str
) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    async def poll() -> dict[str, Any]:
        while True:
            response = await client.get(f"/api/v1/campaigns/{campaign_id}", headers=auth)
            body: dict[str, Any] = await response.json()
            if body["state"] == state:
                return body
            seen[:] = [body]
            await asyncio.sleep(0.1)

    try:
        return await asyncio.wait_for(poll(), 30)
    except TimeoutError:
        raise AssertionError(f"not {state}: {seen}") from None


async def inbound(public: str, api: TwilioApi, sender: str, text: str) -> int:
    """An SMS from ``sender`` through the hub's own Twilio webhook, signed as Twilio signs it."""
    sid = new_sid("SM")
    fields = {
        "AccountSid": api.account_sid,
        "MessageSid": sid,
        "SmsSid": sid,
        "From": sender,
        "To": OUR_NUMBER,
        "Body": text,
        "NumSegments": "1",
    }
    url = f"{public}/hooks/twilio/inbound"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, data=fields, headers={"X-Twilio-Signature": sign(api.auth_token, url, fields)}
        ) as reply,
    ):
        return reply.status


async def test_both_sends_email_where_it_can_and_sms_to_the_others_once_each(
    hub: tuple[Client, dict[str, str], str],
    api: TwilioApi,
    sink: SmtpSink,
    sessions: SessionFactory,
) -> None:
    client, auth, _ = hub
    segment_id, mail_id, text_id = await audience(sessions, with_email=4, sms_only=5)
    campaign_id = await run(
        client,
        auth,
        channel="both",
        segment_id=segment_id,
        email_template_id=mail_id,
        sms_template_id=text_id,
    )
    done = await state_of(client, auth, campaign_id, "finished")
    assert done["counts"]["sent"] == 9
    wrong = await client.post(
        "/api/v1/campaigns",
        json={"name": "X", "channel": "sms", "segment_id": segment_id, "sms_template_id": text_id,
              "sms_gateway": "twilio", "sms_sender": "+70000000000"},
        headers=auth,
    )  # fmt: skip
    refused = await client.post(
        f"/api/v1/campaigns/{(await wrong.json())['id']}/start", headers=auth
    )
    assert refused.status == 422
    assert OUR_NUMBER in await refused.text()
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == [
        f"c{n}@client.example" for n in range(4)
    ]
    texts = sorted((m["to"], m["body"]) for m in api.messages.values())
    assert [to for to, _ in texts] == [phone(n) for n in range(4, 9)]
    assert texts[0][1] == "Клиент, скидка 10% до пятницы"

    # A text back from someone the campaign texted is its reply.
    _, _, public = hub
    status = await inbound(public, api, phone(5), "Интересно, расскажите подробнее")
    assert status in (200, 204)
    response = await client.get(f"/api/v1/campaigns/{campaign_id}", headers=auth)
    assert (await response.json())["counts"]["replied"] == 1


async def test_a_stop_reply_stops_the_rest_of_that_persons_messages(
    hub: tuple[Client, dict[str, str], str],
    api: TwilioApi,
    sessions: SessionFactory,
) -> None:
    client, auth, public = hub
    segment_id, _, text_id = await audience(sessions, with_email=0, sms_only=12)
    campaign_id = await run(
        client, auth, channel="sms", segment_id=segment_id, sms_template_id=text_id, rate=3
    )

    async def first() -> None:
        while not api.messages:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(first(), 15)
    stopper = phone(11)  # the last in the list: not sent yet at 3 a second
    assert await inbound(public, api, stopper, "STOP") in (200, 204)

    done = await state_of(client, auth, campaign_id, "finished")
    assert stopper not in {m["to"] for m in api.messages.values()}
    assert done["counts"]["withheld"] == 1
    assert done["counts"]["sent"] == 11


async def test_nobody_gets_one_at_night_their_message_waits_for_their_morning(
    hub: tuple[Client, dict[str, str], str],
    api: TwilioApi,
    sessions: SessionFactory,
) -> None:
    client, auth, _ = hub
    segment_id, _, text_id = await audience(sessions, with_email=0, sms_only=3, asleep=1)
    campaign_id = await run(
        client, auth, channel="sms", segment_id=segment_id, sms_template_id=text_id
    )

    async def two() -> None:
        while len(api.messages) < 2:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(two(), 15)
    await asyncio.sleep(1)
    assert sorted(m["to"] for m in api.messages.values()) == [phone(0), phone(1)]
    async with sessions() as session:
        waiting = await session.scalar(
            select(Outbox).where(Outbox.campaign_id == campaign_id, Outbox.state == "queued")
        )
    assert waiting is not None
    assert waiting.next_attempt_at is not None
    local = waiting.next_attempt_at.astimezone(ZoneInfo(zone_at(2)))
    assert (local.hour, local.minute) == (9, 0)
    assert waiting.next_attempt_at - datetime.now(UTC) < timedelta(hours=8)


KANNEL_NUMBER = "+15005550007"
KANNEL_SECRET = "campaign-kannel-callback-secret-0123456789"


@pytest.fixture
async def kannel() -> AsyncIterator[KannelServer]:
    if kannel_binaries() is None:
        reason = "Kannel: install kannel and kannel-extras (bearerbox, smsbox, fakesmsc) to run"
        if os.environ.get("COMMHUB_TEST_REQUIRE_KANNEL") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    server = KannelServer()
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def test_a_campaign_through_a_real_kannel_arrives_once_each_and_reports_delivery(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    accounts: dict[Role, Any],
    kannel: KannelServer,
    sessions: SessionFactory,
) -> None:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    gateway = commhub_kannel.adapter(
        name="kannel",
        options={
            "sendsms_url": kannel.sendsms_url,
            "username": kannel.username,
            "password": kannel.password,
            "callback_secret": KANNEL_SECRET,
            "numbers": [KANNEL_NUMBER],
            "rate": 20,
        },
        context=ChannelContext(phone_region="RU", public_url=public),
    )

    async def opener() -> Hub:
        return await open_hub(
            settings.model_copy(update={"public_url": public}), channels=[gateway]
        )

    client = await aiohttp_client(create_app(opener), server_kwargs={"port": port})
    auth = accounts[Role.MARKETER].auth
    segment_id, _, text_id = await audience(sessions, with_email=0, sms_only=5)
    created = await client.post(
        "/api/v1/campaigns",
        json={
            "name": "Kannel",
            "channel": "sms",
            "segment_id": segment_id,
            "sms_template_id": text_id,
            "sms_gateway": "kannel",
        },
        headers=auth,
    )
    campaign_id = (await created.json())["id"]
    assert (await client.post(f"/api/v1/campaigns/{campaign_id}/start", headers=auth)).status == 200

    done = await state_of(client, auth, campaign_id, "finished")
    assert done["counts"]["sent"] == 5

    async def delivered() -> dict[str, Any]:
        while True:
            response = await client.get(f"/api/v1/campaigns/{campaign_id}", headers=auth)
            body: dict[str, Any] = await response.json()
            if body["counts"]["delivered"] == 5:
                return body
            await asyncio.sleep(0.2)

    await asyncio.wait_for(delivered(), 30)
    arrived = sorted(m.receiver.lstrip("+") for m in kannel.smsc_received())
    assert arrived == sorted(phone(n).lstrip("+") for n in range(5))
