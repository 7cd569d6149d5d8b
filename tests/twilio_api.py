"""A Twilio-shaped REST API on loopback for the tests: the Messages resource, recording what it got.

It answers ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` the way
api.twilio.com does for the twilio SDK: HTTP Basic auth with the account
SID and Auth Token or an API key, form fields in, ``201`` with a Message
resource out, Twilio's error JSON (``code``, ``message``, ``more_info``,
``status``) for refusals. Faults are injected here, never by patching the
adapter: the next requests can answer 429 (with Retry-After), 400 with a
Twilio error code, 500, or stall. Like Twilio it can then call the
message's StatusCallback, signed with the twilio library's own
:class:`~twilio.request_validator.RequestValidator`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "^{}\\[~]|€\f"
"""GSM 03.38's extension table: each of these takes two septets (escape + char)."""


def new_sid(prefix: str) -> str:
    """A Twilio SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def segments(text: str) -> int:
    """How many SMS parts Twilio bills for ``text``: GSM-7 160/153, else UCS-2 70/67."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        return 1 if units <= 160 else math.ceil(units / 153)
    units = len(text.encode("utf-16-be")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The X-Twilio-Signature Twilio puts on a request to ``url`` with these POST fields."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


@dataclass(frozen=True)
class Received:
    """One request to the Messages resource, as it arrived."""

    account_sid: str
    username: str
    password: str
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class Fault:
    status: int
    code: int
    message: str
    retry_after: str | None = None
    delay_s: float = 0.0


@dataclass
class TwilioApi:
    """The Messages resource of one Twilio account on 127.0.0.1 and a free port."""

    account_sid: str = field(default_factory=lambda: new_sid("AC"))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    api_keys: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    port: int = 0
    _faults: list[Fault] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(
            f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json", self._create_message
        )
        app.router.add_get(
            f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json", self._list_messages
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._stopping.set()  # stalled requests end now rather than hold the shutdown
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail_next(
        self,
        status: int,
        *,
        code: int | None = None,
        message: str = "",
        retry_after: str | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` requests get this error (Twilio's code for the status by default)."""
        default_code, default_message = {
            400: (21211, "The 'To' number is not a valid phone number."),
            429: (20429, "Too Many Requests"),
            500: (20500, "Internal Server Error"),
            503: (20503, "Service Unavailable"),
        }.get(status, (status, "Error"))
        fault = Fault(status, code or default_code, message or default_message, retry_after)
        self._faults.extend([fault] * times)

    def stall_next(self, seconds: float) -> None:
        """The next request is answered only after ``seconds`` (a gateway that hangs)."""
        self._faults.append(Fault(0, 0, "", delay_s=seconds))

    async def report(
        self,
        sid: str,
        status: str,
        *,
        error_code: str = "",
        deliver_to: str | None = None,
    ) -> tuple[int, str]:
        """POST a status callback for message ``sid`` to its StatusCallback, as Twilio does.

        The signature is over the StatusCallback URL given at send time, the
        URL Twilio calls; ``deliver_to`` sends it elsewhere instead (the hub's
        address behind a TLS proxy) while keeping that signature. Returns the
        HTTP status and body the hub answered.
        """
        message = self.messages[sid]
        url = message["status_callback"]
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": message["from"] or "",
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": message["to"],
        }
        if message["messaging_service_sid"]:
            params["MessagingServiceSid"] = message["messaging_service_sid"]
        if error_code:
            params["ErrorCode"] = error_code
        headers = {"X-Twilio-Signature": sign(self.auth_token, url, params)}
        async with aiohttp.ClientSession() as session:
            async with session.post(deliver_to or url, data=params, headers=headers) as answer:
                return answer.status, await answer.text()

    async def _create_message(self, request: web.Request) -> web.Response:
        account_sid = request.match_info["account_sid"]
        username, password = _basic_auth(request.headers.get("Authorization", ""))
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.received.append(Received(account_sid, username, password, form, dict(request.headers)))
        if self._faults:
            fault = self._faults.pop(0)
            if fault.delay_s:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), fault.delay_s)
            else:
                return _error(fault.status, fault.code, fault.message, fault.retry_after)
        if not self._authorised(account_sid, username, password):
            return _error(401, 20003, "Authenticate")
        if account_sid != self.account_sid:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        problem = _missing(form)
        if problem is not None:
            return _error(400, *problem)
        return web.json_response(self._message(form), status=201)

    async def _list_messages(self, request: web.Request) -> web.Response:
        """The Messages list, newest first, filtered by To and From, one page of PageSize."""
        username, password = _basic_auth(request.headers.get("Authorization", ""))
        if not self._authorised(request.match_info["account_sid"], username, password):
            return _error(401, 20003, "Authenticate")
        query = request.query
        size = int(query.get("PageSize", "50"))
        found = [
            {key: value for key, value in message.items() if key != "status_callback"}
            for message in reversed(self.messages.values())
            if query.get("To", message["to"]) == message["to"]
            and query.get("From", message["from"]) == message["from"]
        ]
        path = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
        return web.json_response(
            {
                "messages": found[:size],
                "end": min(size, len(found)) - 1,
                "first_page_uri": f"{path}?PageSize={size}&Page=0",
                "next_page_uri": None,
                "page": 0,
                "page_size": size,
                "previous_page_uri": None,
                "start": 0,
                "uri": f"{path}?PageSize={size}&Page=0",
            }
        )

    def _authorised(self, account_sid: str, username: str, password: str) -> bool:
        if username == self.account_sid:
            return secrets.compare_digest(password, self.auth_token)
        secret = self.api_keys.get(username)
        return secret is not None and secrets.compare_digest(password, secret)

    def _message(self, form: dict[str, str]) -> dict[str, Any]:
        """A Message resource as Twilio answers a create, remembered for status callbacks."""
        sid = new_sid("SM")
        now = format_datetime(datetime.now(UTC), usegmt=True)
        service = form.get("MessagingServiceSid")
        body = form.get("Body", "")
        resource: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            # A Messaging Service without a From first "accepts", then picks a sender
            "status": "accepted" if service and not form.get("From") else "queued",
            "subresource_uris": {
                "media": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
            "to": form["To"],
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        self.messages[sid] = {**resource, "status_callback": form.get("StatusCallback", "")}
        return resource


def _basic_auth(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        username, _, password = base64.b64decode(encoded).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    return username, password


def _missing(form: dict[str, str]) -> tuple[int, str] | None:
    """Twilio's answers to a create without its required fields."""
    if not form.get("To"):
        return 21604, "A 'To' phone number is required."
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return 21603, "A 'From' phone number is required."
    if not form.get("Body") and not form.get("MediaUrl"):
        return 21602, "Message body is required."
    return None


def _error(status: int, code: int, message: str, retry_after: str | None = None) -> web.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
        headers=headers,
    )
