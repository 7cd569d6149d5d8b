"""The Kannel gateway through its port, against a real Kannel: bearerbox, smsbox and fakesmsc.

Sending goes through smsbox's sendsms to the fake SMSC, whose output shows
what reached the "network". The delivery reports bearerbox makes and the
messages fakesmsc sends as a phone come back to a loopback aiohttp server
that stands in for the hub's ``/hooks/{channel}/{path}`` route: it builds
the :class:`WebhookRequest` and calls the adapter's ``webhook`` as the web
layer does. The sink stands in for the core, settling each event.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import commhub_kannel
from commhub.channels import (
    ChannelConfigError,
    ChannelContext,
    ChannelUnavailable,
    DeliveryState,
    InboundEvent,
    OutboundSms,
    SendRejected,
    SmsAccepted,
    SmsGateway,
    SmsReceived,
    SmsReport,
    WebhookInvalid,
    WebhookReceiver,
    WebhookRefused,
    WebhookRequest,
    WebhookResponse,
)
from commhub_kannel import KannelGateway, callbacks
from kannel import DENIED_PREFIX, KannelServer, SmscMessage, kannel_binaries

T = TypeVar("T")

NAME = "kannel-ru"
SECRET = "kB7dQ2xR9vLm4TzW8pYc3NhF6sJu1GaE_-Xo"
OUR_NUMBER = "+15550001000"
CUSTOMER = "+79161234567"
GSM_TEXT = "Your order #42 is ready: 5€ [shelf B] @ desk {3}"
CYRILLIC_TEXT = "Здравствуйте! Ваш заказ №42 готов к выдаче."
KANNEL_REQUIRED_ENV = "COMMHUB_TEST_REQUIRE_KANNEL"
DEADLINE_S = 5.0


class Core:
    """Stands in for the core's SMS inbox: keeps each event and settles it as told."""

    def __init__(self) -> None:
        self.events: list[InboundEvent] = []
        self.failures = 0
        """Fail this many of the next events (the database is down), then store again."""

    def __call__(self, event: InboundEvent) -> None:
        self.events.append(event)
        settled = getattr(event, "settled", None)
        if settled is None or settled.done():
            return
        if self.failures:
            self.failures -= 1
            settled.set_exception(RuntimeError("database is down"))
        else:
            settled.set_result(None)

    def reports(self, key: str) -> list[SmsReport]:
        return [e for e in self.events if isinstance(e, SmsReport) and e.gateway_id == key]

    def received(self) -> list[SmsReceived]:
        return [e for e in self.events if isinstance(e, SmsReceived)]


class Hooks:
    """The hub's webhook route on loopback: ``/hooks/{channel}/{path}`` to a WebhookReceiver.

    Answers as the web app does: the receiver's response, 403 for
    :class:`WebhookRefused`, 400 for :class:`WebhookInvalid`, 503 for
    :class:`ChannelUnavailable`. Each answer is kept as ``(path, status)``.
    """

    def __init__(self) -> None:
        self.receivers: dict[str, WebhookReceiver] = {}
        self.answers: list[tuple[str, int]] = []
        self.server = TestServer(self._app(), host="127.0.0.1")

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/hooks/{channel}/{path:.*}", self._hook)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        answer = await self._answer(request, path)
        self.answers.append((path, answer.status))
        return web.Response(
            status=answer.status, text=answer.body, content_type=answer.content_type
        )

    async def _answer(self, request: web.Request, path: str) -> WebhookResponse:
        receiver = self.receivers.get(request.match_info["channel"])
        if receiver is None:
            return WebhookResponse(status=404)
        body = await request.read()
        form = await request.post() if request.content_type.endswith("form-urlencoded") else {}
        hook = WebhookRequest(
            method=request.method,
            url=str(request.url),
            path=path,
            query=dict(request.query),
            headers=dict(request.headers),
            form={k: str(v) for k, v in form.items()},
            body=body,
        )
        try:
            return await receiver.webhook(hook)
        except WebhookRefused as exc:
            return WebhookResponse(status=403, body=str(exc))
        except WebhookInvalid as exc:
            return WebhookResponse(status=400, body=str(exc))
        except ChannelUnavailable as exc:
            return WebhookResponse(status=503, body=str(exc))


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    hooks = Hooks()
    await hooks.server.start_server()
    yield hooks
    await hooks.server.close()


@pytest.fixture
async def kannel(request: pytest.FixtureRequest, hooks: Hooks) -> AsyncIterator[KannelServer]:
    """A fresh Kannel for one test, its sms-service posting to ``hooks``.

    Options through indirect parametrization, e.g. ``{"http_retries": 1}``.
    Without Kannel installed the test skips, unless ``COMMHUB_TEST_REQUIRE_KANNEL=1``
    (set by ``.ci/run``) makes that a failure. Kannel's logs are printed at
    teardown, so a failing test shows them.
    """
    if kannel_binaries() is None:
        reason = "Kannel: install kannel and kannel-extras (bearerbox, smsbox, fakesmsc) to run"
        if os.environ.get(KANNEL_REQUIRED_ENV) == "1":
            pytest.fail(f"{reason} ({KANNEL_REQUIRED_ENV}=1 makes it mandatory)")
        pytest.skip(reason)
    hooks_base = callbacks.hooks_base(hooks.public_url, NAME)
    server = KannelServer(
        mo_url=callbacks.mo_url(hooks_base, secret=SECRET), **getattr(request, "param", {})
    )
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        print(f"Kannel logs:\n{server.log_text()}")
        await asyncio.to_thread(server.stop)


GatewayFactory = Callable[..., KannelGateway]


@pytest.fixture
async def make_gateway(hooks: Hooks) -> AsyncIterator[GatewayFactory]:
    built: list[KannelGateway] = []

    def make(*, hub_url: str | None = None, **options: Any) -> KannelGateway:
        gateway = commhub_kannel.adapter(
            name=NAME,
            options={"callback_secret": SECRET, "numbers": [OUR_NUMBER], **options},
            context=ChannelContext(phone_region="RU", public_url=hub_url or hooks.public_url),
        )
        built.append(gateway)
        return gateway

    yield make
    for gateway in built:
        await gateway.stop()


@pytest.fixture
def core() -> Core:
    return Core()


@pytest.fixture
async def gateway(
    make_gateway: GatewayFactory, kannel: KannelServer, hooks: Hooks, core: Core
) -> KannelGateway:
    gateway = make_gateway(
        sendsms_url=kannel.sendsms_url,
        username=kannel.username,
        password=kannel.password,
        timeout_s=3,
    )
    await gateway.start(core)
    hooks.receivers[NAME] = gateway
    return gateway


@pytest.fixture
async def offline_gateway(make_gateway: GatewayFactory, hooks: Hooks, core: Core) -> KannelGateway:
    """A started gateway whose Kannel is not there: for callbacks, which need no sendsms."""
    gateway = make_gateway(
        sendsms_url="http://127.0.0.1:9/cgi-bin/sendsms", username="hub", password="pw"
    )
    await gateway.start(core)
    hooks.receivers[NAME] = gateway
    return gateway


def sms(key: str, text: str = GSM_TEXT, *, recipient: str = CUSTOMER) -> OutboundSms:
    return OutboundSms(key=key, sender="", recipient=recipient, text=text)


async def eventually(probe: Callable[[], T | None], what: str) -> T:
    """Poll ``probe`` until it gives something, or fail saying what never happened."""
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while True:
        found = probe()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"within {DEADLINE_S} s: {what}")
        await asyncio.sleep(0.02)


async def smsc_got(kannel: KannelServer, count: int) -> list[SmscMessage]:
    def probe() -> list[SmscMessage] | None:
        got = kannel.smsc_received()
        return got if len(got) >= count else None

    return await eventually(probe, f"the SMSC got {count} messages")


async def reports_on(core: Core, key: str, count: int) -> list[SmsReport]:
    """The reports on ``key``, once there are ``count``, by state.

    smsbox makes its report requests in parallel, so "delivered" may reach the
    hub before "sent"; the core never moves a message backwards either way.
    """

    def probe() -> list[SmsReport] | None:
        reports = core.reports(key)
        return sorted(reports, key=lambda r: r.state.rank) if len(reports) >= count else None

    return await eventually(probe, f"{count} reports on {key!r}")


# -- sending ---------------------------------------------------------------------------


async def test_gsm_and_cyrillic_texts_reach_the_smsc_and_come_back_delivered(
    gateway: KannelGateway, kannel: KannelServer, core: Core
) -> None:
    assert isinstance(gateway, SmsGateway) and isinstance(gateway, WebhookReceiver)
    before = datetime.now(UTC) - timedelta(seconds=2)

    latin = await gateway.send(sms("outbox-1", GSM_TEXT))
    cyrillic = await gateway.send(sms("outbox-2", CYRILLIC_TEXT))

    assert latin.gateway_ids == ("outbox-1",) and latin.state is DeliveryState.QUEUED
    assert cyrillic.gateway_ids == ("outbox-2",) and cyrillic.state is DeliveryState.QUEUED
    got = await smsc_got(kannel, 2)
    assert [(m.sender, m.receiver, m.text) for m in got] == [
        (OUR_NUMBER, CUSTOMER, GSM_TEXT),
        (OUR_NUMBER, CUSTOMER, CYRILLIC_TEXT),
    ]
    assert got[1].kind == "ucs-2"  # coding=2: Kannel re-encoded our UTF-8 as UCS-2
    for key in ("outbox-1", "outbox-2"):
        reports = await reports_on(core, key, 2)
        # The fake SMSC reports what a real one does: taken by the SMSC, then delivered.
        assert [r.state for r in reports] == [DeliveryState.SENT, DeliveryState.DELIVERED]
        assert all(r.source == NAME and r.reason == "" for r in reports)
        assert all(before <= r.at <= datetime.now(UTC) for r in reports)
    health = gateway.health()
    assert health.connected and health.error is None
    assert health.detail["sent"] == 2


async def test_a_key_kannel_could_misread_comes_back_whole(
    gateway: KannelGateway, kannel: KannelServer, core: Core
) -> None:
    # "%41", "%A", "&" and Cyrillic would each be mangled by Kannel's escape
    # codes or the query string if the key went into the dlr-url as it is.
    key = "outbox/ключ 7&type=16%41%A"

    await gateway.send(sms(key))

    reports = await reports_on(core, key, 2)
    assert [r.state for r in reports] == [DeliveryState.SENT, DeliveryState.DELIVERED]


async def test_a_long_message_reaches_the_smsc_whole_in_concatenated_parts(
    gateway: KannelGateway, kannel: KannelServer, core: Core
) -> None:
    text = " ".join([CYRILLIC_TEXT] * 4)  # 175 characters of UCS-2: 3 segments of 67

    await gateway.send(sms("outbox-long", text))

    parts = await smsc_got(kannel, 3)
    # Each part starts with the concatenation header: 05 00 03 ref total seq (TS 23.040).
    assert [(p.udh[:3], p.udh[4], p.udh[5]) for p in parts] == [
        (b"\x05\x00\x03", 3, 1),
        (b"\x05\x00\x03", 3, 2),
        (b"\x05\x00\x03", 3, 3),
    ]
    assert b"".join(p.payload for p in parts).decode("utf-16-be") == text
    # One report per step for the whole message, not one per part.
    reports = await reports_on(core, "outbox-long", 2)
    assert [r.state for r in reports] == [DeliveryState.SENT, DeliveryState.DELIVERED]
    await asyncio.sleep(0.3)
    assert len(core.reports("outbox-long")) == 2


async def test_concurrent_sends_each_reach_the_smsc(
    gateway: KannelGateway, kannel: KannelServer
) -> None:
    texts = [f"Reminder {n}: your visit is tomorrow" for n in range(6)]

    answers = await asyncio.gather(
        *(gateway.send(sms(f"batch-{n}", text)) for n, text in enumerate(texts))
    )

    assert all(isinstance(answer, SmsAccepted) for answer in answers)
    got = await smsc_got(kannel, len(texts))
    assert sorted(m.text for m in got) == sorted(texts)


async def test_an_unroutable_number_is_rejected_and_reported_failed(
    gateway: KannelGateway, kannel: KannelServer, core: Core
) -> None:
    with pytest.raises(SendRejected, match="Not routable"):
        await gateway.send(sms("outbox-9", recipient=f"{DENIED_PREFIX}1234567"))

    reports = await reports_on(core, "outbox-9", 1)
    assert [(r.state, r.reason) for r in reports] == [(DeliveryState.FAILED, "NACK/no SMSC")]
    assert kannel.smsc_received() == []


async def test_a_wrong_password_is_the_channel_at_fault_and_is_never_shown(
    make_gateway: GatewayFactory,
    kannel: KannelServer,
    core: Core,
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = "not-the-password-7Qz"
    gateway = make_gateway(
        sendsms_url=kannel.sendsms_url, username=kannel.username, password=password
    )
    await gateway.start(core)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(ChannelUnavailable, match="Authorization failed") as raised:
        await gateway.send(sms("outbox-1"))

    health = gateway.health()
    assert not health.connected and "password" in (health.error or "")
    assert password not in str(raised.value)
    assert password not in caplog.text and SECRET not in caplog.text
    assert password not in repr(health) and SECRET not in repr(health)
    assert kannel.smsc_received() == []


async def test_a_stopped_kannel_is_unavailable(
    gateway: KannelGateway, kannel: KannelServer
) -> None:
    await asyncio.to_thread(kannel.stop)

    with pytest.raises(ChannelUnavailable, match="cannot connect"):
        await gateway.send(sms("outbox-1"))
    assert not gateway.health().connected


async def test_a_kannel_that_never_answers_is_unavailable_after_the_timeout(
    make_gateway: GatewayFactory, core: Core
) -> None:
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # read nothing, answer nothing

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    gateway = make_gateway(
        sendsms_url=f"http://127.0.0.1:{port}/cgi-bin/sendsms",
        username="hub",
        password="pw",
        timeout_s=0.3,
    )
    await gateway.start(core)
    try:
        with pytest.raises(ChannelUnavailable, match="no answer within 0.3 s"):
            await gateway.send(sms("outbox-1"))
    finally:
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()


async def test_a_stopped_gateway_sends_nothing(
    gateway: KannelGateway, kannel: KannelServer
) -> None:
    await gateway.stop()

    with pytest.raises(ChannelUnavailable, match="stopped"):
        await gateway.send(sms("outbox-1"))


# -- receiving -------------------------------------------------------------------------


async def test_messages_from_phones_arrive_whole(
    gateway: KannelGateway, kannel: KannelServer, core: Core, hooks: Hooks
) -> None:
    assert gateway.sms_service_url() == kannel.mo_url
    emoji = "Привет! Можно счёт? 🙂"

    kannel.send_from_phone(CUSTOMER, OUR_NUMBER, "STOP")
    kannel.send_from_phone(CUSTOMER, OUR_NUMBER, emoji)

    received = await eventually(lambda: core.received()[1:] and core.received(), "two MO")
    assert [(m.source, m.sender, m.recipient, m.text) for m in received] == [
        (NAME, CUSTOMER, OUR_NUMBER, "STOP"),
        (NAME, CUSTOMER, OUR_NUMBER, emoji),
    ]
    assert all(re.fullmatch(r"[0-9a-f-]{36}", m.external_id) for m in received)
    assert received[0].external_id != received[1].external_id
    assert all(abs(m.received_at - datetime.now(UTC)) < timedelta(minutes=1) for m in received)
    assert hooks.answers == [("mo", 200), ("mo", 200)]
    assert kannel.smsc_received() == []  # the hub's answer is not sent back as a reply SMS


@pytest.mark.parametrize("kannel", [{"http_retries": 2, "http_retry_delay_s": 1}], indirect=True)
async def test_a_message_the_hub_could_not_store_comes_again_with_the_same_id(
    gateway: KannelGateway, kannel: KannelServer, core: Core, hooks: Hooks
) -> None:
    core.failures = 1

    kannel.send_from_phone(CUSTOMER, OUR_NUMBER, "Call me back please")

    received = await eventually(lambda: core.received()[1:] and core.received(), "a retry")
    assert hooks.answers == [("mo", 503), ("mo", 200)]
    assert received[0].external_id == received[1].external_id
    assert received[1].text == "Call me back please"


# -- forged and broken callbacks -------------------------------------------------------


async def post(url: str, *, data: bytes = b"", method: str = "POST") -> int:
    async with aiohttp.ClientSession() as http, http.request(method, url, data=data) as answer:
        return answer.status


@pytest.mark.parametrize(
    "secret",
    ["", "wrong", SECRET[:-1], SECRET + "x", SECRET.upper()],
    ids=["missing", "wrong", "shorter", "longer", "case"],
)
async def test_a_callback_without_the_secret_is_refused(
    offline_gateway: KannelGateway, hooks: Hooks, core: Core, secret: str
) -> None:
    base = callbacks.hooks_base(hooks.public_url, NAME)
    query = f"secret={secret}" if secret else "x=1"

    dlr = await post(f"{base}/dlr?{query}&key=outbox-1&type=1", method="GET")
    mo = await post(f"{base}/mo?{query}&id=1&from={CUSTOMER}&to={OUR_NUMBER}", data=b"hi")

    assert (dlr, mo) == (403, 403)
    assert core.events == []
    request = WebhookRequest("GET", base, "dlr", {"secret": secret}, {}, {}, b"")
    with pytest.raises(WebhookRefused):
        await offline_gateway.webhook(request)


@pytest.mark.parametrize(
    ("path", "query", "problem"),
    [
        ("dlr", "type=1", "key missing"),
        ("dlr", "key=k&type=3", "type '3'"),
        ("dlr", "key=k&type=x", "type 'x'"),
        ("dlr", "key=k&type=1&ts=soon", "ts 'soon'"),
        ("mo", "from=%2B79161234567", "id missing"),
        ("mo", "id=1", "from missing"),
        ("elsewhere", "key=k", "no Kannel callback"),
    ],
)
async def test_a_callback_kannel_could_not_have_made_is_invalid(
    offline_gateway: KannelGateway, core: Core, path: str, query: str, problem: str
) -> None:
    request = WebhookRequest(
        method="POST",
        url=f"http://hub/hooks/{NAME}/{path}",
        path=path,
        query={"secret": SECRET, **dict(p.split("=") for p in query.split("&"))},
        headers={},
        form={},
        body=b"",
    )

    with pytest.raises(WebhookInvalid, match=problem):
        await offline_gateway.webhook(request)
    assert core.events == []


async def test_a_callback_the_core_is_slow_to_store_is_answered_503(
    make_gateway: GatewayFactory,
) -> None:
    events: list[InboundEvent] = []
    gateway = make_gateway(
        sendsms_url="http://127.0.0.1:9/cgi-bin/sendsms",
        username="hub",
        password="pw",
        settle_timeout_s=0.2,
    )
    await gateway.start(events.append)  # never settles
    request = WebhookRequest(
        "GET", "http://hub/", "dlr", {"secret": SECRET, "key": "k", "type": "8"}, {}, {}, b""
    )

    with pytest.raises(ChannelUnavailable, match="within 0.2 s"):
        await gateway.webhook(request)
    assert len(events) == 1


# -- settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "hub_url", "problem"),
    [
        ({"callback_secret": "short"}, "http://hub", "callback_secret: .*at least 32"),
        ({"callback_secret": "a%2" + SECRET}, "http://hub", "callback_secret"),
        ({"callback_secret": "CHANGE-ME-" + SECRET}, "http://hub", "callback_secret: .*sample"),
        ({}, None, "public_url: required"),
        ({"sendsms_url": "ftp://kannel/"}, "http://hub", "sendsms_url"),
        (
            {"sendsms_url": "http://k:13013/cgi-bin/sendsms?x=1"},
            "http://hub",
            "sendsms_url: .*query",
        ),
        ({"dlr_mask": 32}, "http://hub", "dlr_mask"),
        ({"numbers": "+15550001000"}, "http://hub", "numbers: .*list"),
        ({"smsc": "a b"}, "http://hub", "smsc"),
        ({"password": ""}, "http://hub", "password"),
    ],
)
def test_settings_name_what_is_wrong(
    options: dict[str, Any], hub_url: str | None, problem: str
) -> None:
    base = {
        "sendsms_url": "http://127.0.0.1:13013/cgi-bin/sendsms",
        "username": "hub",
        "password": "pw",
        "callback_secret": SECRET,
    }
    with pytest.raises(ChannelConfigError, match=f"Kannel channel '{NAME}': {problem}"):
        commhub_kannel.adapter(
            name=NAME,
            options={**base, **options},
            context=ChannelContext(phone_region="RU", public_url=hub_url),
        )


def test_settings_keep_the_secrets_out_of_sight() -> None:
    gateway = commhub_kannel.adapter(
        name=NAME,
        options={
            "sendsms_url": "http://127.0.0.1:13013/cgi-bin/sendsms",
            "username": "hub",
            "password": "the-sendsms-password",
            "callback_secret": SECRET,
            "public_url": "https://hub.example.com/",
        },
        context=ChannelContext(phone_region="RU", public_url="http://ignored"),
    )
    shown = f"{gateway!r} {gateway.health()!r}"
    assert "the-sendsms-password" not in shown and SECRET not in shown
    assert gateway.health().detail["callbacks"] == (
        f"https://hub.example.com/hooks/{NAME}/{{dlr,mo}}"
    )
    assert gateway.rate == 20 and gateway.numbers == ()
