"""The Twilio gateway through its port: the real adapter and twilio SDK against a loopback API.

Sending goes through the SDK's async client to :class:`twilio_api.TwilioApi`,
which checks Basic auth and records the form as Twilio would get it.
Callbacks are signed with the twilio library's own algorithm, for the URL
Twilio calls (the hub's public URL), and handed to ``webhook`` as the web
layer would; the sink stands in for the core, settling each event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web

import commhub_twilio
from commhub.channels import (
    ChannelConfigError,
    ChannelContext,
    ChannelUnavailable,
    DeliveryState,
    InboundEvent,
    OutboundSms,
    SendRejected,
    SendThrottled,
    SentLookup,
    SmsGateway,
    SmsReceived,
    SmsReport,
    WebhookInvalid,
    WebhookReceiver,
    WebhookRefused,
    WebhookRequest,
)
from commhub_twilio import TwilioGateway
from twilio_api import TwilioApi, new_sid, sign

NAME = "tw"
PUBLIC = "https://hub.example.com"
INTERNAL = "http://127.0.0.1:8080"
OUR_NUMBER = "+15017122661"
CUSTOMER = "+79161234567"
TEXT = "Здравствуйте! Ваш заказ №42 готов к выдаче."


class Core:
    """Stands in for the core's SMS inbox: keeps each event and settles it as told."""

    def __init__(self) -> None:
        self.events: list[InboundEvent] = []
        self.failure: Exception | None = None
        self.hold = False

    def __call__(self, event: InboundEvent) -> None:
        self.events.append(event)
        settled = getattr(event, "settled", None)
        if settled is None or self.hold:
            return
        failure = self.failure

        def settle() -> None:
            if settled.done():
                return
            if failure is None:
                settled.set_result(None)
            else:
                settled.set_exception(failure)

        asyncio.get_running_loop().call_soon(settle)


@pytest.fixture
async def api() -> AsyncIterator[TwilioApi]:
    server = TwilioApi()
    await server.start()
    yield server
    await server.stop()


GatewayFactory = Callable[..., TwilioGateway]


@pytest.fixture
async def make_gateway(api: TwilioApi) -> AsyncIterator[GatewayFactory]:
    built: list[TwilioGateway] = []

    def make(*, hub_url: str | None = PUBLIC, **options: Any) -> TwilioGateway:
        settings: dict[str, Any] = {
            "account_sid": api.account_sid,
            "auth_token": api.auth_token,
            "numbers": [OUR_NUMBER],
            "api_base_url": api.base_url,
            "timeout_s": 2,
            **options,
        }
        gateway = commhub_twilio.adapter(
            name=NAME,
            options=settings,
            context=ChannelContext(phone_region="RU", public_url=hub_url),
        )
        built.append(gateway)
        return gateway

    yield make
    for gateway in built:
        await gateway.stop()


@pytest.fixture
async def core() -> Core:
    return Core()


@pytest.fixture
async def gateway(make_gateway: GatewayFactory, core: Core) -> TwilioGateway:
    gateway = make_gateway()
    await gateway.start(core)
    return gateway


def sms(text: str = TEXT, *, sender: str = "", recipient: str = CUSTOMER) -> OutboundSms:
    return OutboundSms(key="outbox-1", sender=sender, recipient=recipient, text=text)


def callback(
    api: TwilioApi,
    path: str,
    fields: Mapping[str, str],
    *,
    url: str | None = None,
    signed_for: str | None = None,
    signature: str | None = None,
) -> WebhookRequest:
    """A POST Twilio makes to ``/hooks/tw/{path}``, signed for the URL it called."""
    url = url or f"{PUBLIC}/hooks/{NAME}/{path}"
    form = {"AccountSid": api.account_sid, "ApiVersion": "2010-04-01", **fields}
    if signature is None:
        signature = sign(api.auth_token, signed_for or url, form)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "TwilioProxy/1.1"}
    if signature:
        headers["X-Twilio-Signature"] = signature
    return WebhookRequest(
        method="POST", url=url, path=path, query={}, headers=headers, form=form, body=b""
    )


def inbound_fields(sid: str = "") -> dict[str, str]:
    sid = sid or new_sid("SM")
    return {
        "ToCountry": "US",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": "СТОП",
        "FromCountry": "RU",
        "To": OUR_NUMBER,
        "NumSegments": "1",
        "MessageSid": sid,
        "From": CUSTOMER,
    }


def status_fields(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "To": CUSTOMER,
        "From": OUR_NUMBER,
        **extra,
    }


# --- sending -----------------------------------------------------------------------------------


async def test_gateway_implements_the_sms_and_webhook_ports(gateway: TwilioGateway) -> None:
    assert isinstance(gateway, SmsGateway)
    assert isinstance(gateway, WebhookReceiver)
    assert gateway.numbers == (OUR_NUMBER,)
    assert gateway.purposes == frozenset()
    assert gateway.rate == 1.0


async def test_send_posts_the_message_with_our_credentials_and_status_callback(
    gateway: TwilioGateway, api: TwilioApi
) -> None:
    accepted = await gateway.send(sms())

    [request] = api.received
    assert request.form == {
        "To": CUSTOMER,
        "From": OUR_NUMBER,
        "Body": TEXT,
        "StatusCallback": f"{PUBLIC}/hooks/{NAME}/status",
    }
    assert (request.username, request.password) == (api.account_sid, api.auth_token)
    assert request.account_sid == api.account_sid
    [sid] = api.messages
    assert accepted.gateway_ids == (sid,)
    assert accepted.state is DeliveryState.QUEUED
    assert api.messages[sid]["num_segments"] == "1"
    assert gateway.health().error is None


async def test_a_message_in_doubt_is_found_in_twilios_list_only_if_twilio_took_it(
    gateway: TwilioGateway, api: TwilioApi
) -> None:
    """After a crash mid-send the hub asks Twilio: found means sent, none means not sent."""
    assert isinstance(gateway, SentLookup)
    before = datetime.now(UTC) - timedelta(seconds=5)
    accepted = await gateway.send(sms("Your order 17 is ready"))
    await gateway.send(sms("Another text to the same phone"))
    await gateway.send(sms("Your order 17 is ready", recipient="+79161230099"))

    found = await gateway.find_sent(sms("Your order 17 is ready"), since=before)
    assert found is not None and found.gateway_ids == accepted.gateway_ids
    assert found.state is DeliveryState.QUEUED
    assert await gateway.find_sent(sms("Never handed over"), since=before) is None
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await gateway.find_sent(sms("Your order 17 is ready"), since=later) is None


async def test_a_lookup_twilio_cannot_answer_leaves_the_doubt_open(
    gateway: TwilioGateway, api: TwilioApi
) -> None:
    await api.stop()
    with pytest.raises(ChannelUnavailable, match="cannot list messages"):
        await gateway.find_sent(sms(), since=datetime.now(UTC))


async def test_send_from_the_messages_sender_and_with_an_api_key(
    make_gateway: GatewayFactory, api: TwilioApi
) -> None:
    key_sid, key_secret = new_sid("SK"), "key-secret"
    api.api_keys[key_sid] = key_secret
    gateway = make_gateway(
        numbers=[OUR_NUMBER, "+1 (415) 555-0100"], api_key_sid=key_sid, api_key_secret=key_secret
    )

    await gateway.send(sms("Hello", sender="+14155550100"))

    [request] = api.received
    assert request.form["From"] == "+14155550100"
    assert (request.username, request.password) == (key_sid, key_secret)
    assert request.account_sid == api.account_sid


async def test_messaging_service_picks_the_sender_when_the_message_names_none(
    make_gateway: GatewayFactory, api: TwilioApi
) -> None:
    service = new_sid("MG")
    gateway = make_gateway(
        numbers=[], messaging_service_sid=service, public_url="https://sms.example.org/"
    )

    accepted = await gateway.send(sms("Hi"))

    [request] = api.received
    assert request.form["MessagingServiceSid"] == service
    assert "From" not in request.form
    assert request.form["StatusCallback"] == f"https://sms.example.org/hooks/{NAME}/status"
    assert accepted.state is DeliveryState.QUEUED  # Twilio answered "accepted"


async def test_several_sends_in_flight_at_once_each_get_their_own_sid(
    gateway: TwilioGateway, api: TwilioApi
) -> None:
    results = await asyncio.gather(*(gateway.send(sms(f"n{i}")) for i in range(5)))

    sids = {result.gateway_ids[0] for result in results}
    assert sids == set(api.messages)
    assert len(sids) == 5
    assert gateway.health().detail["sent"] == 5


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (21211, "The 'To' number +7916 is not a valid phone number."),
        (21610, "Attempt to send to unsubscribed recipient"),
        (21408, "Permission to send an SMS has not been enabled for the region"),
        (21614, "'To' number is not a valid mobile number"),
    ],
)
async def test_twilio_refusing_a_recipient_fails_the_message_with_its_code(
    gateway: TwilioGateway, api: TwilioApi, code: int, words: str
) -> None:
    api.fail_next(400, code=code, message=words)

    with pytest.raises(SendRejected) as refused:
        await gateway.send(sms())

    assert str(code) in str(refused.value)
    assert words in str(refused.value)
    assert not isinstance(refused.value, ChannelUnavailable)


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [("7", (7.0, 7.0)), ("an HTTP date 30 s from now", (25.0, 30.0))],
)
async def test_too_many_requests_throttles_with_twilios_retry_after(
    gateway: TwilioGateway, api: TwilioApi, retry_after: str, seconds: tuple[float, float]
) -> None:
    if not retry_after.isdigit():  # made when the test runs, not when it is collected
        retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    api.fail_next(429, retry_after=retry_after)

    with pytest.raises(SendThrottled) as throttled:
        await gateway.send(sms())

    assert throttled.value.retry_after is not None
    assert seconds[0] <= throttled.value.retry_after <= seconds[1]
    assert "20429" in str(throttled.value)
    accepted = await gateway.send(sms())  # the next try goes through
    assert accepted.gateway_ids[0] in api.messages


async def test_a_full_sender_queue_throttles_without_a_retry_after(
    gateway: TwilioGateway, api: TwilioApi
) -> None:
    api.fail_next(
        400,
        code=21611,
        message="This 'From' number has exceeded the maximum number of queued messages",
    )

    with pytest.raises(SendThrottled) as throttled:
        await gateway.send(sms())

    assert throttled.value.retry_after is None


@pytest.mark.parametrize("status", [500, 503])
async def test_a_server_error_is_temporary(
    gateway: TwilioGateway, api: TwilioApi, status: int
) -> None:
    api.fail_next(status)

    with pytest.raises(ChannelUnavailable) as unavailable:
        await gateway.send(sms())

    assert not isinstance(unavailable.value, SendThrottled)
    assert str(status) in (gateway.health().error or "")
    await gateway.send(sms())
    assert gateway.health().error is None


async def test_wrong_credentials_make_the_gateway_unavailable_not_the_message_failed(
    make_gateway: GatewayFactory, api: TwilioApi
) -> None:
    gateway = make_gateway(auth_token="0" * 32)

    with pytest.raises(ChannelUnavailable) as unavailable:
        await gateway.send(sms())

    assert "20003" in str(unavailable.value)
    assert "0" * 32 not in str(unavailable.value)


async def test_a_closed_port_is_temporary(make_gateway: GatewayFactory, api: TwilioApi) -> None:
    gateway = make_gateway()
    await api.stop()

    with pytest.raises(ChannelUnavailable):
        await gateway.send(sms())

    assert gateway.health().error


async def test_a_hanging_api_times_out_as_temporary(
    make_gateway: GatewayFactory, api: TwilioApi
) -> None:
    gateway = make_gateway(timeout_s=0.3)
    api.stall_next(5)

    with pytest.raises(ChannelUnavailable) as unavailable:
        await asyncio.wait_for(gateway.send(sms()), 3)

    assert "0.3 s" in str(unavailable.value)


async def test_stop_lets_a_send_in_flight_finish(gateway: TwilioGateway, api: TwilioApi) -> None:
    api.stall_next(0.3)
    sending = asyncio.create_task(gateway.send(sms()))
    while not api.received:
        await asyncio.sleep(0.01)

    await gateway.stop()

    accepted = await sending
    assert accepted.gateway_ids[0] in api.messages


async def test_a_stopped_gateway_refuses_to_send(gateway: TwilioGateway) -> None:
    await gateway.send(sms())
    await gateway.stop()

    with pytest.raises(ChannelUnavailable):
        await gateway.send(sms())
    assert gateway.health().connected is False


# --- callbacks -----------------------------------------------------------------------------------


async def test_an_inbound_message_reaches_the_core_and_twilio_gets_empty_twiml(
    gateway: TwilioGateway, api: TwilioApi, core: Core
) -> None:
    fields = inbound_fields()
    fields["NumSegments"] = "2"

    answer = await gateway.webhook(callback(api, "inbound", fields))

    assert answer.status == 200
    assert answer.body == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert answer.content_type == "text/xml"
    [event] = core.events
    assert isinstance(event, SmsReceived)
    assert (event.source, event.external_id) == (NAME, fields["MessageSid"])
    assert (event.sender, event.recipient, event.text) == (CUSTOMER, OUR_NUMBER, "СТОП")
    assert event.parts == 2
    assert event.settled is not None and event.settled.done()
    health = gateway.health()
    assert health.connected and health.last_event_at is not None


@pytest.mark.parametrize(
    ("status", "extra", "state", "reason"),
    [
        ("queued", {}, DeliveryState.QUEUED, ""),
        ("sending", {}, DeliveryState.SENT, ""),
        ("sent", {}, DeliveryState.SENT, ""),
        ("delivered", {}, DeliveryState.DELIVERED, ""),
        ("read", {}, DeliveryState.DELIVERED, ""),
        (
            "undelivered",
            {"ErrorCode": "30003"},
            DeliveryState.UNDELIVERED,
            "30003 Unreachable destination handset",
        ),
        (
            "failed",
            {"ErrorCode": "30008", "ErrorMessage": "Carrier said no"},
            DeliveryState.FAILED,
            "30008 Carrier said no",
        ),
        ("canceled", {}, DeliveryState.FAILED, ""),
    ],
)
async def test_status_callbacks_become_delivery_reports(
    gateway: TwilioGateway,
    api: TwilioApi,
    core: Core,
    status: str,
    extra: dict[str, str],
    state: DeliveryState,
    reason: str,
) -> None:
    sid = new_sid("SM")

    answer = await gateway.webhook(callback(api, "status", status_fields(sid, status, **extra)))

    assert answer.status == 200
    [event] = core.events
    assert isinstance(event, SmsReport)
    assert (event.source, event.gateway_id, event.state, event.reason) == (NAME, sid, state, reason)


async def test_a_status_with_no_meaning_to_us_is_acknowledged_and_dropped(
    gateway: TwilioGateway, api: TwilioApi, core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await gateway.webhook(
        callback(api, "status", status_fields(new_sid("SM"), "partially_delivered"))
    )

    assert answer.status == 200
    assert core.events == []
    assert "partially_delivered" in caplog.text


async def test_behind_a_proxy_only_the_signature_for_the_public_url_is_good(
    gateway: TwilioGateway, api: TwilioApi, core: Core
) -> None:
    """The hub sees http://127.0.0.1:8080/…; Twilio called and signed https://hub.example.com/…."""
    internal = f"{INTERNAL}/hooks/{NAME}/status"
    fields = status_fields(new_sid("SM"), "delivered")

    with pytest.raises(WebhookRefused):
        await gateway.webhook(callback(api, "status", fields, url=internal))
    assert core.events == []

    public = f"{PUBLIC}/hooks/{NAME}/status"
    answer = await gateway.webhook(callback(api, "status", fields, url=internal, signed_for=public))
    assert answer.status == 200
    assert len(core.events) == 1


async def test_the_query_string_twilio_called_is_part_of_the_signature(
    gateway: TwilioGateway, api: TwilioApi, core: Core
) -> None:
    fields = status_fields(new_sid("SM"), "sent")
    signed = f"{PUBLIC}/hooks/{NAME}/status?batch=7"
    request = callback(
        api, "status", fields, url=f"{INTERNAL}/hooks/{NAME}/status?batch=7", signed_for=signed
    )

    await gateway.webhook(request)

    assert len(core.events) == 1
    with pytest.raises(WebhookRefused):
        await gateway.webhook(
            callback(
                api,
                "status",
                fields,
                url=f"{INTERNAL}/hooks/{NAME}/status?batch=8",
                signed_for=signed,
            )
        )


async def test_a_tampered_parameter_is_refused(
    gateway: TwilioGateway, api: TwilioApi, core: Core
) -> None:
    good = callback(api, "inbound", inbound_fields())
    forged = WebhookRequest(
        method=good.method,
        url=good.url,
        path=good.path,
        query=good.query,
        headers=good.headers,
        form={**good.form, "Body": "START"},
        body=good.body,
    )

    with pytest.raises(WebhookRefused):
        await gateway.webhook(forged)
    assert core.events == []


async def test_a_request_without_signature_is_refused(
    gateway: TwilioGateway, api: TwilioApi, core: Core
) -> None:
    with pytest.raises(WebhookRefused, match="X-Twilio-Signature"):
        await gateway.webhook(callback(api, "inbound", inbound_fields(), signature=""))
    with pytest.raises(WebhookRefused):
        await gateway.webhook(callback(api, "inbound", inbound_fields(), signature="bm9wZQ=="))
    assert core.events == []


async def test_a_good_signature_for_another_account_is_refused(
    gateway: TwilioGateway, api: TwilioApi, core: Core
) -> None:
    fields = {**inbound_fields(), "AccountSid": new_sid("AC")}

    with pytest.raises(WebhookRefused, match="AccountSid"):
        await gateway.webhook(callback(api, "inbound", fields))
    assert core.events == []


async def test_the_signature_header_is_found_in_any_case(
    gateway: TwilioGateway, api: TwilioApi, core: Core
) -> None:
    request = callback(api, "inbound", inbound_fields())
    headers = {key.lower(): value for key, value in request.headers.items()}

    await gateway.webhook(
        WebhookRequest(request.method, request.url, request.path, {}, headers, request.form, b"")
    )

    assert len(core.events) == 1


async def test_a_webhook_configured_as_get_is_signed_over_its_url(
    gateway: TwilioGateway, api: TwilioApi, core: Core
) -> None:
    fields = {"AccountSid": api.account_sid, **status_fields(new_sid("SM"), "delivered")}
    url = f"{PUBLIC}/hooks/{NAME}/status?{urlencode(fields)}"
    headers = {"X-Twilio-Signature": sign(api.auth_token, url, {})}

    await gateway.webhook(WebhookRequest("GET", url, "status", fields, headers, {}, b""))

    [event] = core.events
    assert isinstance(event, SmsReport) and event.state is DeliveryState.DELIVERED


@pytest.mark.parametrize(
    ("path", "fields", "missing"),
    [
        ("inbound", {"From": CUSTOMER, "To": OUR_NUMBER, "Body": "hi"}, "MessageSid"),
        ("inbound", {"MessageSid": "SM1", "To": OUR_NUMBER, "Body": "hi"}, "From"),
        ("status", {"MessageSid": "SM1"}, "MessageStatus"),
        ("status", {"MessageStatus": "sent"}, "MessageSid"),
    ],
)
async def test_a_signed_callback_missing_a_field_is_invalid(
    gateway: TwilioGateway,
    api: TwilioApi,
    core: Core,
    path: str,
    fields: dict[str, str],
    missing: str,
) -> None:
    with pytest.raises(WebhookInvalid, match=missing):
        await gateway.webhook(callback(api, path, fields))
    assert core.events == []


async def test_a_signed_callback_to_an_unknown_path_is_invalid(
    gateway: TwilioGateway, api: TwilioApi
) -> None:
    with pytest.raises(WebhookInvalid, match="voice"):
        await gateway.webhook(callback(api, "voice", inbound_fields()))


async def test_the_same_callback_five_times_reaches_the_core_five_times(
    gateway: TwilioGateway, api: TwilioApi, core: Core
) -> None:
    request = callback(api, "status", status_fields(new_sid("SM"), "delivered"))

    answers = [await gateway.webhook(request) for _ in range(5)]

    assert [answer.status for answer in answers] == [200] * 5
    assert len(core.events) == 5
    assert len({event.gateway_id for event in core.events if isinstance(event, SmsReport)}) == 1


async def test_when_the_core_cannot_store_a_callback_twilio_is_told_to_retry(
    gateway: TwilioGateway, api: TwilioApi, core: Core
) -> None:
    core.failure = ConnectionError("database is down")

    with pytest.raises(ChannelUnavailable, match="database is down"):
        await gateway.webhook(callback(api, "inbound", inbound_fields()))


async def test_when_the_core_does_not_answer_in_time_twilio_is_told_to_retry(
    make_gateway: GatewayFactory, api: TwilioApi, core: Core
) -> None:
    gateway = make_gateway(settle_timeout_s=0.2)
    await gateway.start(core)
    core.hold = True

    with pytest.raises(ChannelUnavailable, match="0.2 s"):
        await gateway.webhook(callback(api, "inbound", inbound_fields()))

    [event] = core.events
    assert isinstance(event, SmsReceived) and event.settled is not None
    assert event.settled.cancelled()  # the core sees it done and does not settle it again


async def test_a_callback_before_start_is_temporary(
    make_gateway: GatewayFactory, api: TwilioApi
) -> None:
    gateway = make_gateway()

    with pytest.raises(ChannelUnavailable):
        await gateway.webhook(callback(api, "inbound", inbound_fields()))


async def test_twilio_reports_on_a_sent_message_through_a_proxy_end_to_end(
    gateway: TwilioGateway, api: TwilioApi, core: Core
) -> None:
    """Send, then Twilio calls the StatusCallback; the proxy hands it to the hub's own address."""
    accepted = await gateway.send(sms())
    hub = web.Application()
    hub.router.add_post("/hooks/{channel}/{path}", _hook(gateway))
    runner = web.AppRunner(hub, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        [sid] = accepted.gateway_ids
        status, _ = await api.report(
            sid, "delivered", deliver_to=f"http://127.0.0.1:{port}/hooks/{NAME}/status"
        )
    finally:
        await runner.cleanup()

    assert status == 200
    [event] = core.events
    assert isinstance(event, SmsReport)
    assert (event.gateway_id, event.state) == (sid, DeliveryState.DELIVERED)


def _hook(gateway: TwilioGateway) -> Callable[[web.Request], Any]:
    """What the hub's web layer does with /hooks/{channel}/{path}, for one channel."""

    async def handle(request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        hook = WebhookRequest(
            method=request.method,
            url=str(request.url),
            path=request.match_info["path"],
            query=dict(request.query),
            headers=dict(request.headers),
            form=form,
            body=await request.read(),
        )
        try:
            answer = await gateway.webhook(hook)
        except WebhookRefused:
            return web.Response(status=403)
        except WebhookInvalid:
            return web.Response(status=400)
        except ChannelUnavailable:
            return web.Response(status=503)
        return web.Response(
            status=answer.status, text=answer.body, content_type=answer.content_type
        )

    return handle


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"account_sid": "AC123"}, "account_sid"),
        ({"auth_token": ""}, "auth_token"),
        ({"numbers": ["8 916 123 45 67"]}, "numbers"),
        ({"numbers": "+15017122661"}, "numbers"),
        ({"numbers": []}, "numbers"),
        ({"api_key_sid": new_sid("SK")}, "api_key_secret"),
        ({"messaging_service_sid": "MGxyz"}, "messaging_service_sid"),
        ({"rate": 0}, "rate"),
        ({"public_url": "hub.example.com"}, "public_url"),
        ({"timeout": 5}, "timeout"),
    ],
)
async def test_a_bad_setting_is_named(
    make_gateway: GatewayFactory, options: dict[str, Any], setting: str
) -> None:
    with pytest.raises(ChannelConfigError, match=setting) as error:
        make_gateway(**options)
    assert NAME in str(error.value)


async def test_without_any_public_url_the_channel_is_refused(make_gateway: GatewayFactory) -> None:
    with pytest.raises(ChannelConfigError, match="public_url"):
        make_gateway(hub_url=None)


async def test_the_auth_token_stays_out_of_reprs_and_errors(
    make_gateway: GatewayFactory, api: TwilioApi
) -> None:
    gateway = make_gateway(api_key_sid=new_sid("SK"), api_key_secret="key-secret-value")
    shown = repr(gateway) + repr(gateway._settings) + repr(gateway.health())
    assert api.auth_token not in shown
    assert "key-secret-value" not in shown
    with contextlib.suppress(ChannelUnavailable):
        await gateway.send(sms())
    assert api.auth_token not in (gateway.health().error or "")


async def test_sender_ids_and_short_codes_are_accepted_as_numbers(
    make_gateway: GatewayFactory,
) -> None:
    gateway = make_gateway(
        numbers=["+7 (916) 000-11-22", "Example Co", "12345"], purposes=["Marketing"], rate=30
    )

    assert gateway.numbers == ("+79160001122", "Example Co", "12345")
    assert gateway.purposes == frozenset({"marketing"})
    assert gateway.rate == 30
