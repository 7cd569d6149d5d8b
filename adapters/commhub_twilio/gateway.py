"""A Twilio account as an SMS gateway: sends through the REST API, hears Twilio's callbacks.

Sending uses the twilio SDK's asynchronous path (``AsyncTwilioHttpClient``,
an aiohttp session shared by every send, so several can be in flight). The
SDK's errors become the core's: Twilio's 400s (invalid or unsubscribed
recipient, …) reject the message for good, 429 and a full sender queue
throttle, 5xx, timeouts and broken connections are temporary. The core
keeps the pace (``rate``): this class never sleeps between messages.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from commhub.adapter_kit import GatewayIdentity
from commhub.channels import (
    ChannelHealth,
    ChannelUnavailable,
    DeliveryState,
    EventSink,
    HandOverUnknown,
    OutboundSms,
    SendRejected,
    SendThrottled,
    SmsAccepted,
    SmsReceived,
    SmsReport,
    WebhookInvalid,
    WebhookRequest,
    WebhookResponse,
)
from commhub_twilio import webhooks
from commhub_twilio.config import TWILIO_API_URL, TwilioSettings

log = logging.getLogger(__name__)

KIND: Final = "twilio"
WINDOW: Final = 10
"""Requests in flight at once: far below the concurrency Twilio allows an account."""
THROTTLE_CODES: Final = frozenset({20429, 21611})
"""Too many requests; the sender's queue is full (Twilio queues at most 4 hours of sends)."""
LOOKUP_LIMIT: Final = 200
"""Messages to one number read when looking for one whose hand-over a crash cut off."""
CONFIG_STATUSES: Final = frozenset({401, 403, 404})
"""Our credentials or account SID are wrong: no message is at fault, so none is failed for it."""

_answer_headers: ContextVar[dict[str, str] | None] = ContextVar(
    "twilio_answer_headers", default=None
)
"""Where the transport leaves the response headers of the send running in this context.

The SDK's exception keeps Twilio's status, code and message but drops the
headers, so ``Retry-After`` reaches :meth:`TwilioGateway.send` this way.
"""


class TwilioTransport(AsyncTwilioHttpClient):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's aiohttp client, aimed at ``api_base_url`` and with a timeout on every request.

    Passing the SDK an ``http_client`` of one's own is Twilio's documented
    way to change how requests go out (twilio-python's advanced-examples/
    custom-http-client.md): the SDK has no base-URL setting, its domains
    hard-code ``https://api.twilio.com``. The SDK's async client also sends
    ``timeout=None`` (no limit at all in aiohttp) unless each call passes
    one, so the configured timeout is applied here. Credentials go in an
    Authorization header built here: the SDK would wrap them in aiohttp's
    ``BasicAuth``, deprecated since aiohttp 3.14. The SDK's request log
    leaves out any header named Authorization.
    """

    def __init__(self, *, api_base_url: str, timeout_s: float) -> None:
        super().__init__(pool_connections=True, timeout=timeout_s)
        self._base = urlsplit(api_base_url)

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = _basic_auth(*auth)
        response: Response = await super().request(
            method,
            self._aimed(url),
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=timeout if timeout is not None else self.timeout,
            allow_redirects=allow_redirects,
        )
        slot = _answer_headers.get()
        if slot is not None:
            slot.update((str(k), str(v)) for k, v in (response.headers or {}).items())
        return response

    def _aimed(self, url: str) -> str:
        if self._base.geturl() == TWILIO_API_URL:
            return url
        parts = urlsplit(url)
        path = self._base.path.rstrip("/") + parts.path
        return urlunsplit((self._base.scheme, self._base.netloc, path, parts.query, ""))


class TwilioGateway(GatewayIdentity):
    """An :class:`~commhub.channels.SmsGateway` and :class:`~commhub.channels.WebhookReceiver`."""

    def __init__(self, *, name: str, settings: TwilioSettings) -> None:
        if settings.public_url is None:
            raise ValueError("settings.public_url must be resolved (read_settings does it)")
        self._name = name
        self._settings = settings
        self._options = settings
        self._public_url = settings.public_url
        self._status_callback = f"{settings.public_url}/hooks/{quote(name, safe='')}/status"
        self._transport: TwilioTransport | None = None
        self._client: Any = None
        self._sink: EventSink | None = None
        self._started_at: datetime | None = None
        self._stopped = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_event_at: datetime | None = None
        self._error: str | None = None
        self._counts = {"sent": 0, "received": 0, "reports": 0, "ignored": 0}

    def __repr__(self) -> str:
        return f"<TwilioGateway {self._name!r} account={self._settings.account_sid}>"

    @property
    def window(self) -> int:
        return WINDOW

    @property
    def status_callback(self) -> str:
        """Where Twilio reports on what we send: ``{public_url}/hooks/{name}/status``."""
        return self._status_callback

    async def start(self, sink: EventSink) -> None:
        """Take callbacks into ``sink`` from now on; the REST session opens with the first send."""
        self._sink = sink
        self._stopped = False
        self._started_at = datetime.now(UTC)

    async def stop(self) -> None:
        """Let the sends in flight finish (up to the timeout), then close the HTTP session."""
        self._stopped = True
        self._sink = None
        self._started_at = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self._settings.timeout_s)
        transport, self._transport, self._client = self._transport, None, None
        if transport is not None:
            await transport.close()

    def health(self) -> ChannelHealth:
        settings = self._settings
        return ChannelHealth(
            name=self._name,
            kind=KIND,
            connected=self._started_at is not None,
            connected_since=self._started_at,
            last_event_at=self._last_event_at,
            error=self._error,
            detail={
                "account_sid": settings.account_sid,
                "numbers": list(settings.numbers),
                "messaging_service_sid": settings.messaging_service_sid,
                "status_callback": self._status_callback,
                **self._counts,
            },
        )

    async def send(self, message: OutboundSms) -> SmsAccepted:
        if self._stopped:
            raise ChannelUnavailable(f"Twilio channel {self._name!r} is stopped")
        self._in_flight += 1
        self._idle.clear()
        headers: dict[str, str] = {}
        context = _answer_headers.set(headers)
        try:
            created = await self._rest().messages.create_async(**self._request(message))
        except (TwilioRestException, TwilioServiceException) as exc:
            raise self._refusal(message, exc, headers) from None
        except aiohttp.ConnectionTimeoutError:
            raise self._unavailable(
                message, f"cannot connect within {self._settings.timeout_s:g} s"
            ) from None
        except TimeoutError:
            # The request went out: Twilio may have made the message (the core asks it later).
            raise self._in_doubt(
                message, f"no answer within {self._settings.timeout_s:g} s"
            ) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise self._in_doubt(
                message, f"the answer was cut off ({type(exc).__name__})"
            ) from None
        except (TwilioException, aiohttp.ClientError, OSError, ValueError) as exc:
            # ValueError: a 2xx answer that is not JSON (a captive proxy, not Twilio)
            raise self._unavailable(message, f"{type(exc).__name__}: {exc}") from None
        finally:
            _answer_headers.reset(context)
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
        sid = str(created.sid or "")
        if not sid:
            raise self._unavailable(message, "Twilio's answer has no message SID")
        self._error = None
        self._counts["sent"] += 1
        status = str(created.status or "").lower()
        return SmsAccepted(
            gateway_ids=(sid,),
            accepted_at=datetime.now(UTC),
            state=webhooks.STATES.get(status, DeliveryState.QUEUED),
        )

    async def find_sent(self, message: OutboundSms, *, since: datetime) -> SmsAccepted | None:
        """Twilio's record of ``message``: the newest Message to its number with its text.

        Read from the Messages list filtered by To (and From where we chose
        it), newest first; only messages created at or after ``since`` count.
        """
        request = self._request(message)
        filters: dict[str, Any] = {"to": message.recipient, "limit": LOOKUP_LIMIT}
        if "from_" in request:
            filters["from_"] = request["from_"]
        try:
            found = await self._rest().messages.list_async(**filters)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise ChannelUnavailable(f"Twilio: cannot list messages: HTTP {exc.status}") from None
        except (TimeoutError, TwilioException, aiohttp.ClientError, OSError, ValueError) as exc:
            raise ChannelUnavailable(
                f"Twilio: cannot list messages: {type(exc).__name__}"
            ) from None
        for record in found:
            created = record.date_created
            if record.body == message.text and (created is None or created >= since):
                status = str(record.status or "").lower()
                return SmsAccepted(
                    gateway_ids=(str(record.sid),),
                    accepted_at=created or datetime.now(UTC),
                    state=webhooks.STATES.get(status, DeliveryState.QUEUED),
                )
        return None

    async def webhook(self, request: WebhookRequest) -> WebhookResponse:
        """Check a callback's signature, hand its event to the core, answer once it is stored.

        The answer waits for ``settled``: when the core cannot store the
        event in time, :class:`ChannelUnavailable` makes the web layer answer
        503 and Twilio call again, so nothing is acknowledged that was lost.
        """
        settings = self._settings
        url = webhooks.signed_url(request, public_url=self._public_url, channel=self._name)
        fields = webhooks.check_signature(
            request,
            url=url,
            auth_token=settings.auth_token.get_secret_value(),
            account_sid=settings.account_sid,
        )
        path = request.path.strip("/")
        if path not in (webhooks.INBOUND, webhooks.STATUS):
            raise WebhookInvalid(f"no Twilio callback at {path!r}: use inbound or status")
        sink = self._sink
        if sink is None:
            raise ChannelUnavailable(f"Twilio channel {self._name!r} is not started")
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        event: SmsReceived | SmsReport | None
        if path == webhooks.INBOUND:
            event = webhooks.read_inbound(self._name, fields, settled)
        else:
            event = webhooks.read_status(self._name, fields, settled)
        if event is None:
            self._counts["ignored"] += 1
            log.warning(
                "Twilio channel %s: status %r of %s is not one the hub knows; ignored",
                self._name,
                fields.get("MessageStatus"),
                fields.get("MessageSid"),
            )
            return WebhookResponse(status=200)
        await self._settle(sink, event, settled)
        self._last_event_at = datetime.now(UTC)
        if isinstance(event, SmsReceived):
            self._counts["received"] += 1
            return WebhookResponse(body=webhooks.EMPTY_TWIML, content_type=webhooks.TWIML_TYPE)
        self._counts["reports"] += 1
        return WebhookResponse(status=200)

    async def _settle(
        self, sink: EventSink, event: SmsReceived | SmsReport, settled: asyncio.Future[None]
    ) -> None:
        timeout = self._settings.settle_timeout_s
        try:
            sink(event)
            await asyncio.wait_for(settled, timeout)
        except TimeoutError:
            # wait_for cancelled ``settled``: the core sees it done and leaves it alone
            raise ChannelUnavailable(
                f"the hub did not store Twilio's callback within {timeout:g} s; Twilio retries"
            ) from None
        except Exception as exc:
            settled.cancel()
            raise ChannelUnavailable(
                f"the hub could not store Twilio's callback ({type(exc).__name__}: {exc}); "
                "Twilio retries"
            ) from None

    def _rest(self) -> Any:
        """The SDK client, made on first use inside the event loop (aiohttp needs one)."""
        if self._client is None:
            settings = self._settings
            self._transport = TwilioTransport(
                api_base_url=settings.api_base_url, timeout_s=settings.timeout_s
            )
            username, password = settings.credentials()
            self._client = Client(
                username,
                password,
                account_sid=settings.account_sid,
                http_client=self._transport,
            )
        return self._client

    def _request(self, message: OutboundSms) -> dict[str, str]:
        """From: the message's sender, else the Messaging Service's pool, else our first number."""
        settings = self._settings
        request = {
            "to": message.recipient,
            "body": message.text,
            "status_callback": self._status_callback,
        }
        if settings.messaging_service_sid is not None:
            request["messaging_service_sid"] = settings.messaging_service_sid
        sender = message.sender or (
            settings.numbers[0] if settings.messaging_service_sid is None else ""
        )
        if sender:
            request["from_"] = sender
        return request

    def _refusal(
        self,
        message: OutboundSms,
        exc: TwilioRestException | TwilioServiceException,
        headers: dict[str, str],
    ) -> Exception:
        status = int(exc.status)
        code = int(exc.code) if exc.code is not None else None
        if isinstance(exc, TwilioServiceException):
            text = f"{exc.title}: {exc.detail}" if exc.detail else str(exc.title)
        else:
            text = str(exc.msg).removeprefix("Unable to create record: ")
        said = f"Twilio error {code if code is not None else status}: {text}"
        if status == 429 or code in THROTTLE_CODES:
            retry_after = _retry_after(headers)
            self._error = said
            log.warning("Twilio channel %s: %s throttled: %s", self._name, message.key, said)
            return SendThrottled(said, retry_after=retry_after)
        if status >= 500 or status in CONFIG_STATUSES:
            return self._unavailable(message, f"HTTP {status}, {said}")
        log.info("Twilio channel %s: %s refused: %s", self._name, message.key, said)
        return SendRejected(said)

    def _in_doubt(self, message: OutboundSms, reason: str) -> HandOverUnknown:
        self._error = reason
        log.warning(
            "Twilio channel %s: %s may have been taken: %s", self._name, message.key, reason
        )
        return HandOverUnknown(f"Twilio: {reason}")

    def _unavailable(self, message: OutboundSms, reason: str) -> ChannelUnavailable:
        self._error = reason
        log.warning("Twilio channel %s: %s not sent: %s", self._name, message.key, reason)
        return ChannelUnavailable(f"Twilio: {reason}")


def _basic_auth(username: str, password: str) -> str:
    """RFC 7617 Basic credentials; Twilio's SIDs and secrets are ASCII."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _retry_after(headers: dict[str, str]) -> float | None:
    """Retry-After in seconds (RFC 9110 §10.2.3: a number of seconds or an HTTP date)."""
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), "").strip()
    if not raw:
        return None
    if raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
