"""A Kannel smsbox as an SMS gateway: sends through sendsms, hears Kannel's callbacks.

Sending is one HTTP GET to smsbox's ``sendsms`` per message, on an aiohttp
session shared by every send, so several can be in flight; the core keeps
the pace (``rate``) and this class never sleeps between messages. smsbox
answers once bearerbox has taken the message (gw/smsbox.c
``delayed_http_reply``): ``202 0: Accepted for delivery`` (routed to an
SMSC's queue) or ``202 3: Queued for later delivery`` (no SMSC link up now,
bearerbox keeps it). Neither names the message, so reports are matched by
our own key, which the ``dlr-url`` carries (see callbacks.py).

What a refusal means:

- ``403 Not routable. Do not try again.`` and the other 4xx answers (a
  missing or black-listed number, a field Kannel cannot read) are about the
  message: :class:`SendRejected`, with Kannel's words.
- ``403 Authorization failed`` (our username/password) and ``400 Sender
  missing`` (no ``numbers`` here, no ``default-sender`` there) are about the
  configuration, not the message: :class:`ChannelUnavailable`, so the core
  retries with backoff and, if nobody fixes it, fails the message after its
  last try with this reason — a password being rotated does not fail a
  whole campaign at once. The channel's health shows the error meanwhile.
- ``503 Temporal failure``, other 5xx, a refused connection or no answer
  within ``timeout_s``: :class:`ChannelUnavailable`.

The password travels in the sendsms URL (Kannel's interface), so no URL of
a request ever goes into a log line or an exception message here.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
from yarl import URL

from commhub.adapter_kit import GatewayIdentity
from commhub.channels import (
    ChannelHealth,
    ChannelUnavailable,
    DeliveryState,
    EventSink,
    HandOverUnknown,
    OutboundSms,
    SendRejected,
    SmsAccepted,
    SmsReceived,
    SmsReport,
    WebhookInvalid,
    WebhookRequest,
    WebhookResponse,
)
from commhub.domain.sms_text import SmsEncoding, SmsTextError, measure
from commhub_kannel import callbacks
from commhub_kannel.config import KannelSettings

log = logging.getLogger(__name__)

WINDOW: Final = 10
"""sendsms requests in flight at once; smsbox queues them for bearerbox."""

KIND: Final = "kannel"
UCS2_CODING: Final = "2"
"""sendsms ``coding``: 0 GSM 7-bit (Kannel's default), 1 8-bit, 2 UCS-2."""
AUTH_FAILED: Final = "Authorization failed"
SENDER_MISSING: Final = "Sender missing"
_ANSWER_MAX: Final = 200


class KannelGateway(GatewayIdentity):
    """An :class:`~commhub.channels.SmsGateway` and :class:`~commhub.channels.WebhookReceiver`."""

    def __init__(self, *, name: str, settings: KannelSettings) -> None:
        if settings.public_url is None:
            raise ValueError("settings.public_url must be resolved (read_settings does it)")
        self._name = name
        self._settings = settings
        self._options = settings
        self._hooks = callbacks.hooks_base(settings.public_url, name)
        endpoint = urlsplit(settings.sendsms_url)
        port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
        self._endpoint = f"{endpoint.hostname}:{port}"
        self._http: aiohttp.ClientSession | None = None
        self._sink: EventSink | None = None
        self._started_at: datetime | None = None
        self._stopped = False
        self._sending: set[asyncio.Task[Any]] = set()
        self._last_event_at: datetime | None = None
        self._error: str | None = None
        self._counts = {"sent": 0, "refused": 0, "received": 0, "reports": 0}

    def __repr__(self) -> str:
        return f"<KannelGateway {self._name!r} {self._endpoint} user={self._settings.username}>"

    @property
    def window(self) -> int:
        return WINDOW

    def sms_service_url(self) -> str:
        """The ``post-url`` for kannel.conf's ``sms-service``, secret included: keep it private."""
        return callbacks.mo_url(
            self._hooks, secret=self._settings.callback_secret.get_secret_value()
        )

    async def start(self, sink: EventSink) -> None:
        """Take callbacks into ``sink`` from now on and open the HTTP session for sendsms."""
        self._sink = sink
        self._stopped = False
        self._started_at = datetime.now(UTC)
        self._session()

    async def stop(self) -> None:
        """Let the sends in flight finish (up to the timeout), then close the HTTP session."""
        self._stopped = True
        self._sink = None
        self._started_at = None
        if self._sending:
            await asyncio.wait(self._sending, timeout=self._settings.timeout_s)
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    def health(self) -> ChannelHealth:
        settings = self._settings
        return ChannelHealth(
            name=self._name,
            kind=KIND,
            connected=self._started_at is not None and self._error is None,
            connected_since=self._started_at,
            last_event_at=self._last_event_at,
            error=self._error,
            detail={
                "sendsms": self._endpoint,
                "username": settings.username,
                "smsc": settings.smsc,
                "numbers": list(settings.numbers),
                "dlr_mask": settings.dlr_mask,
                "callbacks": f"{self._hooks}/{{{callbacks.DLR},{callbacks.MO}}}",
                **self._counts,
            },
        )

    async def send(self, message: OutboundSms) -> SmsAccepted:
        if self._stopped:
            raise ChannelUnavailable(f"Kannel channel {self._name!r} is stopped")
        url = self._sendsms(message)
        task = asyncio.current_task()
        if task is not None:
            self._sending.add(task)
        try:
            async with self._session().get(url, allow_redirects=False) as response:
                status = response.status
                said = (await response.read()).decode("utf-8", errors="replace").strip()
        except aiohttp.ConnectionTimeoutError:
            raise self._unavailable(
                message, f"cannot connect within {self._settings.timeout_s:g} s"
            ) from None
        except TimeoutError:
            # The request went out: smsbox may have taken the message and bearerbox send it.
            raise self._in_doubt(
                message, f"no answer within {self._settings.timeout_s:g} s"
            ) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise self._in_doubt(
                message, f"the answer was cut off ({type(exc).__name__})"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise self._unavailable(
                message, f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            # Only the type: some aiohttp errors quote the URL, and the URL holds the password.
            raise self._unavailable(message, f"connection failed ({type(exc).__name__})") from None
        finally:
            if task is not None:
                self._sending.discard(task)
        said = said[:_ANSWER_MAX]
        if 200 <= status < 300:
            self._error = None
            self._counts["sent"] += 1
            return SmsAccepted(
                gateway_ids=(message.key,),
                accepted_at=datetime.now(UTC),
                state=DeliveryState.QUEUED,
            )
        raise self._refusal(message, status, said)

    async def webhook(self, request: WebhookRequest) -> WebhookResponse:
        """Check a callback's secret, hand its event to the core, answer once it is stored.

        The answer waits for ``settled``: when the core cannot store the
        event in time, :class:`ChannelUnavailable` makes the web layer answer
        503, and smsbox calls again if its ``http-request-retry`` allows.
        """
        callbacks.authenticate(request, secret=self._settings.callback_secret.get_secret_value())
        sink = self._sink
        if sink is None:
            raise ChannelUnavailable(f"Kannel channel {self._name!r} is not started")
        path = request.path.strip("/")
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        event: SmsReceived | SmsReport
        if path == callbacks.DLR:
            event = callbacks.read_report(self._name, request, settled)
        elif path == callbacks.MO:
            event = callbacks.read_received(self._name, request, settled)
        else:
            raise WebhookInvalid(
                f"no Kannel callback at {path!r}: use {callbacks.DLR} or {callbacks.MO}"
            )
        await self._settle(sink, event, settled)
        self._last_event_at = datetime.now(UTC)
        self._counts["received" if isinstance(event, SmsReceived) else "reports"] += 1
        # An empty answer: the sms-service has max-messages = 0, so smsbox sends no reply SMS.
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
                f"the hub did not store Kannel's callback within {timeout:g} s"
            ) from None
        except Exception as exc:
            settled.cancel()
            raise ChannelUnavailable(
                f"the hub could not store Kannel's callback ({type(exc).__name__}: {exc})"
            ) from None

    def _session(self) -> aiohttp.ClientSession:
        """The sendsms session: opened by start, or by the first send where nothing starts us."""
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._settings.timeout_s)
            )
        return self._http

    def _sendsms(self, message: OutboundSms) -> URL:
        """The sendsms request: Kannel's parameter names (user guide, "Sending SMS")."""
        settings = self._settings
        try:
            encoding = measure(message.text).encoding
        except SmsTextError as exc:
            raise SendRejected(str(exc)) from None
        params = {
            "username": settings.username,
            "password": settings.password.get_secret_value(),
            "to": message.recipient,
            "text": message.text,
            # We hand UTF-8; Kannel converts to GSM 7-bit or, with coding=2, to UCS-2.
            "charset": "UTF-8",
        }
        sender = message.sender or (settings.numbers[0] if settings.numbers else "")
        if sender:
            params["from"] = sender
        if encoding is SmsEncoding.UCS2:
            params["coding"] = UCS2_CODING
        if settings.smsc is not None:
            params["smsc"] = settings.smsc
        if settings.dlr_mask:
            params["dlr-mask"] = str(settings.dlr_mask)
            params["dlr-url"] = callbacks.dlr_url(
                self._hooks,
                secret=settings.callback_secret.get_secret_value(),
                key=message.key,
            )
        query = urlencode(params, quote_via=quote, safe="")
        return URL(f"{settings.sendsms_url}?{query}", encoded=True)

    def _refusal(self, message: OutboundSms, status: int, said: str) -> Exception:
        words = f"Kannel answered {status} {said!r}"
        if status in (401, 403) and AUTH_FAILED.lower() in said.lower():
            return self._unavailable(
                message,
                f"{words}: the sendsms-user {self._settings.username!r} and its password in "
                "kannel.conf must match this channel's username and password",
            )
        if status == 400 and SENDER_MISSING.lower() in said.lower():
            return self._unavailable(
                message,
                f"{words}: give this channel numbers, or the sendsms-user a default-sender",
            )
        if 400 <= status < 500:
            self._counts["refused"] += 1
            log.info("Kannel channel %s: %s refused: %s", self._name, message.key, words)
            return SendRejected(words)
        return self._unavailable(message, words)

    def _in_doubt(self, message: OutboundSms, reason: str) -> HandOverUnknown:
        self._error = reason
        log.warning(
            "Kannel channel %s: %s may have been taken by %s: %s",
            self._name,
            message.key,
            self._endpoint,
            reason,
        )
        return HandOverUnknown(f"Kannel: {reason}")

    def _unavailable(self, message: OutboundSms, reason: str) -> ChannelUnavailable:
        self._error = reason
        log.warning(
            "Kannel channel %s: %s not sent via %s: %s",
            self._name,
            message.key,
            self._endpoint,
            reason,
        )
        return ChannelUnavailable(f"Kannel at {self._endpoint}: {reason}")
