"""No customer's phone number or e-mail address in a hub's log, even at DEBUG.

A real ``commhub serve`` at ``COMMHUB_LOG_LEVEL=DEBUG`` works the main flows
against real peers on loopback — a call replayed from a recorded Asterisk
stream, an SMS out through a Twilio-shaped API and a STOP back through the
signed webhook, an e-mail out through an SMTP sink and the answer in from
Dovecot, a spreadsheet import, a write the database refuses — and then its
whole output (ours and every library's log lines, tracebacks included) is
searched for every number and address those fixtures carry, in every form
they were written in.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from ami_harness import SECRET, recording
from ami_replay import AmiReplayServer, Playback
from dovecot import DovecotServer
from smtp_sink import SmtpSink
from twilio_api import TwilioApi, new_sid, sign

T = TypeVar("T")
ADMIN_PASSWORD = "the admin's password"
OUR_NUMBER = "+15005550006"
CALLER = "89161234567"
"""The caller in the recorded call (inbound_answered_ru_trunk_prefix): +7 916 123-45-67."""
IVAN_EMAIL = "ivan.petrov@client.example"
SHEET = (
    "Full name;Mobile;E-mail\r\n"
    "Anna Smirnova;+7 903 555-01-01;anna.smirnova@vector.example\r\n"
    "Oleg Orlov;8 (926) 700-11-22;oleg@orlov.example\r\n"
    "Broken Phone;12-AB;not-an-address@\r\n"
)
SECRETS = [
    # Every form each number or address took on its way in, and the forms the hub stores.
    "9161234567",
    "916 123-45-67",
    "916) 123-45-67",
    "9035550101",
    "903 555-01-01",
    "9267001122",
    "926) 700-11-22",
    "ivan.petrov@",
    "ivan.petrov%40",
    "anna.smirnova@",
    "oleg@orlov",
]

CHANNELS = """
[[channels]]
adapter = "asterisk"
name = "main"
host = "127.0.0.1"
port = {pbx_port}
username = "commhub"
secret = "{pbx_secret}"
trunk_contexts = ["from-trunk", "sim-pstn-out"]
operator_contexts = ["operators", "operators-noanswer", "from-internal"]
region = "RU"
cdr_wait_s = 0.5

[[channels]]
adapter = "email"
name = "sales"
address = "sales@example.com"

[channels.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "plain"

[channels.imap]
host = "127.0.0.1"
port = {imap_port}
security = "plain"
username = "sales"
password = "an imap password"
idle_renew_s = 60

[[channels]]
adapter = "twilio"
name = "tw"
account_sid = "{account_sid}"
auth_token = "{auth_token}"
numbers = ["{our_number}"]
api_base_url = "{twilio_url}"
rate = 50
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _until(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 20) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await probe()
        if found is not None:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(0.1)


async def test_a_debug_log_of_the_main_flows_names_no_customer(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    log = await _serve_the_main_flows(tmp_path, dovecot)
    assert " DEBUG " in log and "7916***67" in log, log[-3000:]
    leaks = {secret: _context(log, secret) for secret in SECRETS if secret in log}
    assert not leaks, json.dumps(leaks, indent=1, ensure_ascii=False)


async def test_the_debug_setting_logs_them_as_they_are(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    """The same flows with COMMHUB_LOG_PERSONAL_DATA on: the search above finds what it seeks."""
    log = await _serve_the_main_flows(tmp_path, dovecot, COMMHUB_LOG_PERSONAL_DATA="true")
    shown = {secret for secret in SECRETS if secret in log}
    assert {"9161234567", "ivan.petrov@"} <= shown, shown


async def _serve_the_main_flows(tmp_path: Path, dovecot: DovecotServer, **settings: str) -> str:
    """Run ``commhub serve`` at DEBUG through the flows; returns everything it printed."""
    pbx = AmiReplayServer(username="commhub", secret=SECRET)
    await pbx.start()
    sink = SmtpSink()
    await sink.start()
    twilio = TwilioApi()
    await twilio.start()
    dovecot.add_user("sales", "an imap password")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    (tmp_path / "channels.toml").write_text(
        CHANNELS.format(
            pbx_port=pbx.port,
            pbx_secret=SECRET,
            smtp_port=sink.port,
            imap_port=dovecot.port,
            account_sid=twilio.account_sid,
            auth_token=twilio.auth_token,
            our_number=OUR_NUMBER,
            twilio_url=twilio.base_url,
        )
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMHUB_")},
        "COMMHUB_DATA_DIR": str(tmp_path / "var"),
        "COMMHUB_PORT": str(port),
        "COMMHUB_PHONE_REGION": "RU",
        "COMMHUB_CHANNELS_FILE": str(tmp_path / "channels.toml"),
        "COMMHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "COMMHUB_PUBLIC_URL": base,
        "COMMHUB_LOG_LEVEL": "DEBUG",
        "PYTHONASYNCIODEBUG": "0",
        **settings,
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        # A file, not a pipe: a DEBUG log nobody reads would fill a pipe and stall the hub.
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "commhub", "serve", env=env, stdout=log_file, stderr=log_file
        )
        try:
            await pbx.wait_logins(1, timeout=60)
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(base_url=base, cookie_jar=jar) as http:
                admin = await _log_in(http)
                await _work_the_main_flows(http, admin, pbx, sink, twilio, dovecot, base)
        finally:
            server.send_signal(signal.SIGINT)
            await asyncio.wait_for(server.wait(), timeout=30)
            await pbx.close()
            await sink.close()
            await twilio.stop()
    return log_path.read_text(errors="replace")


async def _log_in(http: aiohttp.ClientSession) -> dict[str, str]:
    async def logged_in() -> dict[str, str] | None:
        try:
            credentials = {"username": "admin", "password": ADMIN_PASSWORD}
            async with http.post("/api/v1/auth/login", json=credentials) as login:
                assert login.status == 200
                csrf = {"X-CSRF-Token": (await login.json())["csrf_token"]}
            token = {"name": "logs test"}
            async with http.post("/api/v1/tokens", json=token, headers=csrf) as issued:
                return {"Authorization": f"Bearer {(await issued.json())['token']}"}
        except aiohttp.ClientConnectionError:
            return None

    return await _until(logged_in, "commhub serve answering", timeout=60)


async def _work_the_main_flows(
    http: aiohttp.ClientSession,
    admin: dict[str, str],
    pbx: AmiReplayServer,
    sink: SmtpSink,
    twilio: TwilioApi,
    dovecot: DovecotServer,
    base: str,
) -> None:
    ivan = {"name": "Ivan Petrov", "phones": ["8 (916) 123-45-67"], "emails": [IVAN_EMAIL]}
    async with http.post("/api/v1/contacts", json=ivan, headers=admin) as created:
        assert created.status == 201, await created.text()
        ivan_id = (await created.json())["id"]
    await _import_a_sheet(http, admin)
    await pbx.play(Playback.from_recording(recording("inbound_answered_ru_trunk_prefix")))
    await _until(lambda: _logged(http, admin, "call", 1), "the call on the log")
    async with http.post(
        "/api/v1/sms", json={"contact_id": ivan_id, "text": "Your order is ready"}, headers=admin
    ) as sms:
        assert sms.status in (201, 202), await sms.text()
    await _until(lambda: _ready(len(twilio.received) == 1), "the SMS at Twilio")
    await _text_stop(twilio, base)
    await _until(lambda: _logged(http, admin, "sms", 2), "the STOP on the log")
    mail = {"to": [{"address": IVAN_EMAIL}], "subject": "Your order", "text": "Ready"}
    async with http.post("/api/v1/emails", json=mail, headers=admin) as sent:
        assert sent.status == 202, await sent.text()
    [ours] = await sink.wait_for(1, timeout=20)
    [message_id] = re.findall(rb"Message-ID: (<[^>]+>)", ours.data)
    await dovecot.append(
        "sales",
        b"From: Ivan Petrov <" + IVAN_EMAIL.encode() + b">\r\nTo: sales@example.com\r\n"
        b"Subject: Re: Your order\r\nMessage-ID: <answer-1@client.example>\r\n"
        b"In-Reply-To: " + message_id + b"\r\n\r\nThanks, call me on +7 916 123-45-67\r\n",
    )
    await _until(lambda: _logged(http, admin, "email", 2), "the answer on the log")
    # A write the database refuses (a contact that does not exist), whatever the API answers.
    refused = {
        "channel": "call",
        "direction": "in",
        "status": "answered",
        "external_id": "db-error-1",
        "occurred_at": "2026-01-01T10:00:00Z",
        "contact_id": 987654,
        "from_address": "+79161234567",
    }
    async with http.post("/api/v1/interactions", json=refused, headers=admin) as answer:
        assert answer.status != 201


async def _import_a_sheet(http: aiohttp.ClientSession, admin: dict[str, str]) -> None:
    form = aiohttp.FormData()
    mapping = {"name": "Full name", "phones": ["Mobile"], "emails": ["E-mail"]}
    form.add_field("mapping", json.dumps(mapping))
    form.add_field("file", SHEET.encode(), filename="people.csv", content_type="text/csv")
    async with http.post("/api/v1/imports", data=form, headers=admin) as started:
        assert started.status == 202, await started.text()
        location = started.headers["Location"]

    async def finished() -> dict[str, Any] | None:
        async with http.get(location, headers=admin) as state:
            report = dict(await state.json())
        return report if report["status"] in ("done", "failed") else None

    report = await _until(finished, "the import")
    assert (report["status"], report["created"]) == ("done", 2), report


async def _text_stop(twilio: TwilioApi, base: str) -> None:
    """The customer answers STOP: Twilio's signed webhook to the hub."""
    sid = new_sid("SM")
    form = {
        "AccountSid": twilio.account_sid,
        "ApiVersion": "2010-04-01",
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": "STOP",
        "From": "+79161234567",
        "To": OUR_NUMBER,
        "NumSegments": "1",
        "NumMedia": "0",
    }
    url = f"{base}/hooks/tw/inbound"
    headers = {"X-Twilio-Signature": sign(twilio.auth_token, url, form)}
    async with aiohttp.ClientSession() as gateway:
        async with gateway.post(url, data=form, headers=headers) as answer:
            assert answer.status == 200, await answer.text()


async def _logged(
    http: aiohttp.ClientSession, admin: dict[str, str], channel: str, count: int
) -> bool | None:
    async with http.get("/api/v1/interactions", params={"channel": channel}, headers=admin) as log:
        items = (await log.json())["items"]
    return True if len(items) >= count else None


async def _ready(condition: bool) -> bool | None:
    return True if condition else None


def _context(log: str, secret: str) -> list[str]:
    """The lines that leaked ``secret``, for the failure message."""
    return [line[:300] for line in log.splitlines() if secret in line][:5]
