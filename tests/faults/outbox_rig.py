"""The outbox crash suite's rig: a real ``commhub serve`` sending through three real peers.

The hub is a subprocess (killed with SIGKILL, started again on the same
database) with three channels: a mailbox whose SMTP server is aiosmtpd
(:class:`~smtp_sink.SmtpSink`), a Twilio account served by the
Twilio-shaped API (:class:`~twilio_api.TwilioApi`, the real twilio SDK talks
to it) and a real Kannel (bearerbox, smsbox, fakesmsc). The two in-process
peers can hold requests, before or after they take the message, and can
kill the hub from inside their own handling — the moment a gateway has
accepted a message and the hub has not yet written it down.

What counts is what the peers got: :meth:`OutboxRig.tally` compares each
message queued with the peer's own record and the hub's outbox, and says
how many went once, twice, never, or are shown to a person as uncertain.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path
from typing import Any, Final

import aiohttp

from faults.harness import free_port, until
from faults.hub_process import HubProcess, RigError
from kannel import KannelServer
from smtp_sink import SmtpSink
from twilio_api import TwilioApi

PASSWORD: Final = "a long enough password for everyone"
MANAGER: Final = "mira"
TWILIO_NUMBER: Final = "+15005550006"
KANNEL_NUMBER: Final = "+15005550007"
KANNEL_SECRET: Final = "crash-suite-callback-secret-0123456789abcdef"
MAILBOX: Final = "sales@example.com"
LEASE_S: Final = 2.0
"""The hub's outbox lease here (COMMHUB_OUTBOX_LEASE_S): doubts show within seconds."""
START_TIMEOUT_S: Final = 60.0
CHANNELS: Final = ("email", "twilio", "kannel")

CHANNELS_FILE: Final = """\
[[channels]]
adapter = "email"
name = "sales"
address = "{mailbox}"
[channels.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "plain"

[[channels]]
adapter = "twilio"
name = "twilio"
account_sid = "{account_sid}"
auth_token = "{auth_token}"
numbers = ["{twilio_number}"]
api_base_url = "{twilio_url}"
rate = {rate}
timeout_s = 5

[[channels]]
adapter = "kannel"
name = "kannel"
sendsms_url = "{sendsms_url}"
username = "{kannel_user}"
password = "{kannel_password}"
callback_secret = "{kannel_secret}"
numbers = ["{kannel_number}"]
rate = {rate}
timeout_s = 5
"""


class HeldTwilio(TwilioApi):
    """The Twilio-shaped API, able to hold requests and to kill the hub at the n-th message.

    ``hold``: ``"before"`` keeps each request before the message is made (the
    gateway never took it once the hub is gone), ``"after"`` once it is made
    (the gateway took it, the hub never heard). :meth:`release` lets the held
    requests end; those held before are then refused, as a gateway drops a
    request whose client went away.
    """

    hold: str = ""
    held: int = 0
    kill_at: int = 0
    killer: Callable[[], None] | None = None
    _released: asyncio.Event | None = None

    def release(self) -> None:
        self.hold = ""
        if self._released is not None:
            self._released.set()

    async def _create_message(self, request: Any) -> Any:
        from aiohttp import web

        if self._released is None:
            self._released = asyncio.Event()
        if self.hold == "before":
            self.held += 1
            await self._released.wait()
            return web.json_response({"code": 20500, "message": "gone"}, status=500)
        if self.hold == "after":
            answer = await super()._create_message(request)
            self.held += 1
            await self._released.wait()
            return answer
        answer = await super()._create_message(request)
        if self.kill_at and len(self.messages) >= self.kill_at and self.killer is not None:
            self.kill_at = 0
            asyncio.get_running_loop().call_later(0.003, self.killer)
        return answer


class HeldSmtp(SmtpSink):
    """aiosmtpd that can hold DATA before or after keeping the message, or kill the hub."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = ""
        self.held = 0
        self.kill_at = 0
        self.killer: Callable[[], None] | None = None
        self._released = asyncio.Event()
        recorder = self.recorder
        keep = recorder.handle_DATA

        async def handle_data(server: Any, session: Any, envelope: Any) -> str:
            if self.hold == "before":
                self.held += 1
                await self._released.wait()
                return "421 4.3.0 the client went away"
            answer = await keep(server, session, envelope)
            if self.hold == "after":
                self.held += 1
                await self._released.wait()
            elif self.kill_at and len(recorder.messages) >= self.kill_at and self.killer:
                self.kill_at = 0
                asyncio.get_running_loop().call_later(0.003, self.killer)
            return answer

        recorder.handle_DATA = handle_data  # type: ignore[method-assign]

    def release(self) -> None:
        self.hold = ""
        self._released.set()


@dataclass(frozen=True, slots=True)
class Tally:
    """One channel's outcome: how many of the queued messages went once, twice, never."""

    channel: str
    queued: int
    sent_once: int
    duplicates: int
    lost: int
    uncertain: int
    """Shown to a person as "may have been sent", with the reason."""
    uncertain_delivered: int
    """Of those, how many the peer did get (the person would dismiss them)."""

    def row(self, point: str) -> str:
        return (
            f"| {point} | {self.channel} | {self.sent_once} | {self.duplicates} | {self.lost} "
            f"| {self.uncertain} ({self.uncertain_delivered} had reached the gateway) |"
        )


class OutboxRig:
    """A hub process with a mailbox and two SMS gateways, and the peers behind them."""

    def __init__(self, folder: Path, *, database_url: str | None, redis_url: str) -> None:
        self.folder = folder
        self.database_url = database_url
        self.redis_url = redis_url
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.smtp = HeldSmtp()
        self.twilio = HeldTwilio()
        # smsbox calls a report again while the hub is down (http-request-retry)
        self.kannel = KannelServer(http_retries=20, http_retry_delay_s=1)
        self.hub = HubProcess(folder, base_url=self.base_url, env=self.env)
        self._http: aiohttp.ClientSession | None = None
        self._csrf = ""
        self.unconfirmed: list[tuple[str, int]] = []
        """Messages whose queueing request a kill cut off: :meth:`queue_again` asks again."""

    # --- setting up --------------------------------------------------------------------

    async def open(self, *, rate: float) -> None:
        await self.smtp.start()
        await self.twilio.start()
        await asyncio.to_thread(self.kannel.start)
        (self.folder / "channels.toml").write_text(
            CHANNELS_FILE.format(
                mailbox=MAILBOX,
                smtp_port=self.smtp.port,
                account_sid=self.twilio.account_sid,
                auth_token=self.twilio.auth_token,
                twilio_number=TWILIO_NUMBER,
                twilio_url=self.twilio.base_url,
                sendsms_url=self.kannel.sendsms_url,
                kannel_user=self.kannel.username,
                kannel_password=self.kannel.password,
                kannel_secret=KANNEL_SECRET,
                kannel_number=KANNEL_NUMBER,
                rate=rate,
            )
        )
        await self.cli(
            "user", "add", MANAGER, "--role", "manager", "--password-stdin",
            stdin=f"{PASSWORD}\n".encode(),
        )  # fmt: skip
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.twilio.killer = self.smtp.killer = self.kill_now

    async def close(self) -> None:
        await self.stop_hub()
        self.smtp.release()
        self.twilio.release()
        if self._http is not None:
            await self._http.close()
        await self.smtp.close()
        await self.twilio.stop()
        await asyncio.to_thread(self.kannel.stop)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMMHUB_")}
        env |= {
            "COMMHUB_DATA_DIR": str(self.folder / "var"),
            "COMMHUB_PORT": str(self.port),
            "COMMHUB_PUBLIC_URL": self.base_url,
            "COMMHUB_CHANNELS_FILE": str(self.folder / "channels.toml"),
            "COMMHUB_ADMIN_PASSWORD": "the admin's own password",
            "COMMHUB_PHONE_REGION": "RU",
            "COMMHUB_OUTBOX_LEASE_S": str(LEASE_S),
        }
        if self.database_url:
            env["COMMHUB_DATABASE_URL"] = self.database_url
        return env

    async def cli(self, *args: str, stdin: bytes | None = None) -> str:
        return await self.hub.cli(*args, stdin=stdin)

    # --- the hub process -------------------------------------------------------------------

    async def start_hub(self, *, sending: bool = True) -> None:
        """A new ``commhub serve`` on the same database.

        ``sending=False``: a web process that only queues (it owns no channel
        and its jobs go to Redis, where no worker runs): nothing is claimed.
        """
        extra = {} if sending else {"COMMHUB_LISTEN": "false", "COMMHUB_REDIS_URL": self.redis_url}
        assert self._http is not None
        await self.hub.start(self._http, **extra)
        await self._login()

    def kill_now(self) -> None:
        self.hub.kill_now()

    async def kill_hub(self) -> None:
        await self.hub.kill()

    async def wait_killed(self) -> None:
        """Wait for a kill a peer set off (``kill_at``)."""
        await self.hub.wait_killed()

    async def stop_hub(self) -> None:
        await self.hub.stop()

    def hub_logs(self) -> str:
        return self.hub.logs()

    async def _login(self) -> None:
        assert self._http is not None
        async with self._http.post(
            f"{self.base_url}/api/v1/auth/login", json={"username": MANAGER, "password": PASSWORD}
        ) as response:
            if response.status != 200:
                raise RigError(f"login: {response.status} {await response.text()}")
            self._csrf = str((await response.json())["csrf_token"])

    # --- what people do -------------------------------------------------------------------

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        assert self._http is not None
        kwargs["headers"] = {"X-CSRF-Token": self._csrf, **kwargs.get("headers", {})}
        async with self._http.request(method, f"{self.base_url}{path}", **kwargs) as response:
            body = await response.json() if response.content_type.endswith("json") else None
            return response.status, body

    async def queue(self, count: int, *, concurrency: int = 16) -> dict[str, list[str]]:
        """Queue ``count`` messages on each channel through the API; their texts by channel.

        Each request carries an Idempotency-Key, so one cut off by a kill
        (kept in :attr:`unconfirmed`) can be asked again and still queues once.
        """
        texts: dict[str, list[str]] = {c: [] for c in CHANNELS}
        await self._queue([(c, i) for i in range(count) for c in CHANNELS], texts, concurrency)
        return texts

    async def queue_again(self) -> None:
        """Ask again for what a kill cut off, as a client retrying with its key does."""
        pending, self.unconfirmed = self.unconfirmed, []
        await self._queue(pending, {c: [] for c in CHANNELS}, 16)

    async def _queue(
        self, items: list[tuple[str, int]], texts: dict[str, list[str]], concurrency: int
    ) -> None:
        slots = asyncio.Semaphore(concurrency)

        async def one(channel: str, index: int) -> None:
            text = f"{channel} message {index:05d}"
            texts[channel].append(text)
            if channel == "email":
                path = "/api/v1/emails"
                body: dict[str, Any] = {
                    "to": [{"address": f"client{index}@client.example"}],
                    "subject": text,
                    "text": f"{text}\n",
                }
            else:
                path = "/api/v1/sms"
                number = TWILIO_NUMBER if channel == "twilio" else KANNEL_NUMBER
                prefix = "+7916" if channel == "twilio" else "+7925"
                body = {"to": f"{prefix}{index:07d}", "text": text, "sender": number}
            async with slots:
                try:
                    status, answer = await self.request(
                        "POST", path, json=body, headers={"Idempotency-Key": text}
                    )
                except aiohttp.ClientError:
                    self.unconfirmed.append((channel, index))  # the hub was killed meanwhile
                    return
            if status not in (200, 202):
                raise RigError(f"queueing {text}: {status} {answer}")

        await asyncio.gather(*(one(c, i) for c, i in items))

    async def outbox(self, state: str) -> list[dict[str, Any]]:
        """Every outbox row in ``state`` (all pages)."""
        rows: list[dict[str, Any]] = []
        cursor = ""
        while True:
            status, page = await self.request(
                "GET", f"/api/v1/outbox?state={state}&limit=500{cursor}"
            )
            if status != 200:
                raise RigError(f"outbox {state}: {status} {page}")
            rows += page["items"]
            if not page["next_cursor"]:
                return rows
            cursor = f"&cursor={page['next_cursor']}"

    async def settled(self, *, timeout: float = 120.0) -> None:
        """Wait until nothing is queued or being handed over, and no Twilio doubt is open."""

        async def quiet() -> bool | None:
            for state in ("queued", "sending"):
                if await self.outbox(state):
                    return None
            doubts = [r for r in await self.outbox("uncertain") if r["source"] == "twilio"]
            return True if not doubts else None

        await until(quiet, "the outbox settling", timeout=timeout)

    # --- what the peers got -----------------------------------------------------------------

    def received(self, channel: str) -> list[str]:
        if channel == "email":
            return [str(message_from_bytes(m.data)["Subject"]) for m in self.smtp.messages]
        if channel == "twilio":
            return [m["body"] for m in self.twilio.messages.values()]
        return [m.text for m in self.kannel.smsc_received()]

    async def drained(self, *, quiet_s: float = 3.0, timeout: float = 120.0) -> None:
        """Wait until no peer has taken a new message for ``quiet_s`` (Kannel's own queue
        drains into fakesmsc after smsbox accepted the messages)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        counts: tuple[int, ...] = ()
        while loop.time() < deadline:
            now = tuple(len(self.received(c)) for c in CHANNELS)
            if now == counts:
                return
            counts = now
            await asyncio.sleep(quiet_s)
        raise RigError(f"the peers kept taking messages for {timeout:.0f}s: {counts}")

    async def tally(self, texts: dict[str, list[str]]) -> list[Tally]:
        """Each channel's outcome; a message the peer never got and no person sees is lost."""
        await self.drained()
        uncertain = await self.outbox("uncertain")
        failed = await self.outbox("failed")
        tallies = []
        for channel in CHANNELS:
            source = "sales" if channel == "email" else channel
            got = Counter(self.received(channel))
            doubts = {_text(r) for r in uncertain if r["source"] == source and r["reason"]}
            fails = {_text(r) for r in failed if r["source"] == source and r["reason"]}
            queued = texts[channel]
            tallies.append(
                Tally(
                    channel=channel,
                    queued=len(queued),
                    sent_once=sum(1 for t in queued if got[t] == 1),
                    duplicates=sum(n - 1 for n in got.values() if n > 1),
                    lost=sum(1 for t in queued if not got[t] and t not in doubts | fails),
                    uncertain=len(doubts),
                    uncertain_delivered=sum(1 for t in doubts if got[t]),
                )
            )
        return tallies


def _text(row: dict[str, Any]) -> str:
    """A row's message text: the Idempotency-Key it was queued with, after ``api:{user}:``."""
    return str(row["key"]).split(":", 2)[-1]
