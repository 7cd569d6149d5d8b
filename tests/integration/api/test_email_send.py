"""Sending e-mail end to end: the API, the outbox, the send job and a real SMTP server.

The hub runs as in the embedded default (in-process jobs); the mailbox's
SMTP server is aiosmtpd on loopback, and the tests assert on the bytes it
received and on what the card shows.
"""

from __future__ import annotations

import asyncio
import base64
import email
import io
import json
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from commhub.bootstrap import Hub, open_hub
from commhub.channels import ChannelContext
from commhub.config import Settings
from commhub.domain.contacts import ContactDraft
from commhub.domain.interactions import Medium
from commhub.domain.roles import Role
from commhub.models import Interaction, Outbox
from commhub.services import contacts
from commhub.store import suppressions
from commhub.store.engine import SessionFactory
from commhub.web.app import create_app
from commhub_email import adapter
from smtp_sink import SmtpSink

Client = TestClient[Any, Any]
ADDRESS = "sales@example.com"


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    server = SmtpSink()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def anna(sessions: SessionFactory, accounts: dict[Role, Any]) -> int:
    view = await contacts.create_contact(
        sessions,
        ContactDraft(name="Anna Smirnova", emails=("anna@client.example",)),
        owner_id=None,
        source="test",
    )
    return view.id


HubClient = Callable[..., Awaitable[tuple[Client, Hub]]]


@pytest.fixture
def hub_client(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    accounts: dict[Role, Any],
) -> HubClient:
    """Start the hub with one mailbox whose SMTP server is ``port``."""

    async def start(port: int, **smtp: Any) -> tuple[Client, Hub]:
        options = {
            "address": ADDRESS,
            "display_name": "Example Sales",
            "max_message_mb": 1,
            "smtp": {"host": "127.0.0.1", "port": port, "security": "plain", **smtp},
        }
        channel = adapter(name="sales", options=options, context=ChannelContext(phone_region="RU"))
        opened: list[Hub] = []

        async def opener() -> Hub:
            hub = await open_hub(settings, channels=[channel])
            opened.append(hub)
            return hub

        client = await aiohttp_client(create_app(opener))
        return client, opened[0]

    return start


async def send(client: Client, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    payload = {"to": [{"address": "anna@client.example", "name": "Anna Smirnova"}], **body}
    payload.setdefault("subject", "Your offer")
    payload.setdefault("text", "Hello Anna,\nhere is the offer.\n")
    response = await client.post("/api/v1/emails", json=payload, headers=auth)
    assert response.status in (200, 202), await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def settled(
    client: Client, auth: dict[str, str], interaction_id: int, timeout: float = 15.0
) -> dict[str, Any]:
    """The e-mail once its outbox row has left 'queued'/'sending'."""

    async def read() -> dict[str, Any]:
        response = await client.get(f"/api/v1/emails/{interaction_id}", headers=auth)
        body: dict[str, Any] = await response.json()
        return body

    async def poll() -> None:
        while (await read())["outbox"]["state"] in ("queued", "sending"):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)
    return await read()  # read again: the poll may have seen the row mid-commit


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_sent_mail_reaches_the_server_byte_for_byte_and_the_card(
    hub_client: HubClient, sink: SmtpSink, accounts: dict[Role, Any], anna: int
) -> None:
    client, _ = await hub_client(sink.port)
    auth = accounts[Role.OPERATOR].auth
    queued = await send(client, auth, html="<p>Hello <b>Anna</b></p>", subject="Предложение: offer")
    assert queued["state"] == "queued"
    assert queued["contact_id"] == anna

    shown = await settled(client, auth, queued["interaction_id"])
    assert shown["outbox"]["state"] == "sent"
    assert shown["outbox"]["reply"].startswith("250 2.0.0 Ok: queued as Q1")
    assert shown["status"] == "sent"
    [received] = sink.messages
    assert received.mail_from == ADDRESS
    assert received.rcpt_tos == ("anna@client.example",)

    raw = await client.get(f"/api/v1/emails/{queued['interaction_id']}/raw", headers=auth)
    stored = await raw.read()
    assert received.data.replace(b"\r\n", b"\n") == stored.replace(b"\r\n", b"\n")

    message = parsed(received.data)
    assert message["From"] == "Example Sales <sales@example.com>"
    assert message["To"] == "Anna Smirnova <anna@client.example>"
    assert message["Subject"] == "Предложение: offer"
    assert message["Message-ID"] == f"<{shown['message_id']}>"
    assert shown["message_id"].endswith("@example.com")
    assert message["Date"] is not None
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert text.get_content().replace("\r\n", "\n") == "Hello Anna,\nhere is the offer.\n"
    assert html.get_content_type() == "text/html"
    assert "<b>Anna</b>" in html.get_content()

    card = await client.get(f"/api/v1/contacts/{anna}/timeline", headers=auth)
    [line] = (await card.json())["items"]
    assert line["channel"] == "email"
    assert line["status"] == "sent"
    assert line["subject"] == "Предложение: offer"


async def test_a_reply_carries_threading_headers_and_stays_in_the_thread(
    hub_client: HubClient, sink: SmtpSink, accounts: dict[Role, Any], anna: int
) -> None:
    client, _ = await hub_client(sink.port)
    auth = accounts[Role.OPERATOR].auth
    first = await send(client, auth, subject="Offer")
    first_shown = await settled(client, auth, first["interaction_id"])
    second = await send(client, auth, reply_to_id=first["interaction_id"], subject=None)
    second_shown = await settled(client, auth, second["interaction_id"])
    third = await send(client, auth, reply_to_id=second["interaction_id"], subject=None)
    await settled(client, auth, third["interaction_id"])

    first_id = first_shown["message_id"]
    second_id = second_shown["message_id"]
    _, reply, reply_to_reply = (parsed(m.data) for m in sink.messages)
    assert reply["Subject"] == "Re: Offer"
    assert reply["In-Reply-To"] == f"<{first_id}>"
    assert reply["References"] == f"<{first_id}>"
    assert reply_to_reply["Subject"] == "Re: Offer"
    assert reply_to_reply["In-Reply-To"] == f"<{second_id}>"
    assert reply_to_reply["References"] == f"<{first_id}> <{second_id}>"

    shown = await settled(client, auth, third["interaction_id"])
    assert shown["thread_id"] == first_shown["thread_id"]
    assert [item["interaction_id"] for item in shown["thread"]] == [
        first["interaction_id"],
        second["interaction_id"],
        third["interaction_id"],
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": "Offer\r\nBcc: victim@example.org"}, "subject"),
        ({"to": [{"address": "anna@client.example", "name": "A\nBcc: x@y.z"}]}, "to.name"),
        ({"to": [{"address": "anna@client.example\r\nBcc: x@y.z"}]}, "to"),
        ({"to": [{"address": "not an address"}]}, "to"),
        ({"cc": [{"address": "x@@y"}]}, "cc"),
    ],
)
async def test_header_injection_and_bad_addresses_are_refused_and_nothing_is_sent(
    hub_client: HubClient,
    sink: SmtpSink,
    accounts: dict[Role, Any],
    sessions: SessionFactory,
    body: dict[str, Any],
    field: str,
) -> None:
    client, _ = await hub_client(sink.port)
    payload = {
        "to": [{"address": "anna@client.example"}],
        "subject": "Offer",
        "text": "Hello",
        **body,
    }
    response = await client.post(
        "/api/v1/emails", json=payload, headers=accounts[Role.OPERATOR].auth
    )
    assert response.status == 422, await response.text()
    problem = await response.json()
    assert [error["field"] for error in problem["errors"]] == [field]
    async with sessions() as session:
        assert (await session.scalars(select(Outbox))).all() == []
    await asyncio.sleep(0.1)
    assert sink.messages == []


async def test_many_messages_share_one_connection(
    hub_client: HubClient, sink: SmtpSink, accounts: dict[Role, Any], anna: int
) -> None:
    client, _ = await hub_client(sink.port)
    auth = accounts[Role.OPERATOR].auth
    sent = [await send(client, auth, subject=f"Message {n}") for n in range(20)]
    await sink.wait_for(20)
    for item in sent:
        assert (await settled(client, auth, item["interaction_id"]))["status"] == "sent"
    assert sink.recorder.connections == 1
    assert len({m.peer for m in sink.messages}) == 1


async def test_a_refused_recipient_fails_the_message_with_the_servers_reason(
    hub_client: HubClient, sink: SmtpSink, accounts: dict[Role, Any], anna: int
) -> None:
    sink.recorder.refuse["anna@client.example"] = "550 5.1.1 <anna@client.example>: no such user"
    client, _ = await hub_client(sink.port)
    auth = accounts[Role.OPERATOR].auth
    queued = await send(client, auth)
    shown = await settled(client, auth, queued["interaction_id"])
    assert shown["outbox"]["state"] == "failed"
    assert "550 5.1.1" in shown["outbox"]["last_error"]
    assert shown["status"] == "failed"
    assert shown["outbox"]["attempts"] == 1
    assert sink.messages == []


async def test_a_temporary_refusal_is_retried_and_then_sent(
    hub_client: HubClient, sink: SmtpSink, accounts: dict[Role, Any], anna: int
) -> None:
    sink.recorder.defer = 1
    client, _ = await hub_client(sink.port)
    auth = accounts[Role.OPERATOR].auth
    queued = await send(client, auth)
    shown = await settled(client, auth, queued["interaction_id"], timeout=20)
    assert shown["outbox"]["state"] == "sent"
    assert shown["outbox"]["attempts"] == 2
    assert len(sink.messages) == 1


async def test_a_dropped_connection_is_reopened_for_the_next_message(
    hub_client: HubClient, sink: SmtpSink, accounts: dict[Role, Any], anna: int
) -> None:
    client, _ = await hub_client(sink.port)
    auth = accounts[Role.OPERATOR].auth
    first = await send(client, auth)
    await settled(client, auth, first["interaction_id"])
    sink.drop()  # the server closes idle clients
    await asyncio.sleep(0.05)
    second = await send(client, auth)
    shown = await settled(client, auth, second["interaction_id"], timeout=20)
    assert shown["outbox"]["state"] == "sent"
    assert len(sink.messages) == 2
    assert sink.recorder.connections == 2


async def test_an_unreachable_server_leaves_the_message_failed_with_the_reason(
    hub_client: HubClient, accounts: dict[Role, Any], anna: int
) -> None:
    closed = SmtpSink()
    await closed.start()
    port = closed.port
    await closed.close()
    client, _ = await hub_client(port)
    auth = accounts[Role.OPERATOR].auth
    queued = await send(client, auth)
    shown = await settled(client, auth, queued["interaction_id"], timeout=30)
    assert shown["outbox"]["state"] == "failed"
    assert "cannot connect" in shown["outbox"]["last_error"]
    assert shown["outbox"]["attempts"] == 3


async def test_attachments_go_out_and_can_be_downloaded_from_the_card(
    hub_client: HubClient, sink: SmtpSink, accounts: dict[Role, Any], anna: int
) -> None:
    client, _ = await hub_client(sink.port)
    auth = accounts[Role.OPERATOR].auth
    pdf = b"%PDF-1.4 offer\x00\xff"
    queued = await send(
        client,
        auth,
        attachments=[
            {
                "filename": "предложение.pdf",
                "content_type": "application/pdf",
                "content_base64": base64.b64encode(pdf).decode(),
            }
        ],
    )
    shown = await settled(client, auth, queued["interaction_id"])
    message = parsed(sink.messages[0].data)
    [part] = list(message.iter_attachments())
    assert part.get_filename() == "предложение.pdf"
    assert part.get_content() == pdf
    [item] = shown["attachments"]
    assert item["filename"] == "предложение.pdf"
    download = await client.get(item["url"], headers=auth)
    assert download.status == 200
    assert await download.read() == pdf
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_message_over_the_size_limit_is_refused(
    hub_client: HubClient, sink: SmtpSink, accounts: dict[Role, Any], anna: int
) -> None:
    client, _ = await hub_client(sink.port)  # max_message_mb = 1
    big = base64.b64encode(b"x" * 900_000).decode()
    body = {
        "to": [{"address": "anna@client.example"}],
        "subject": "Big",
        "text": "see attached",
        "attachments": [{"filename": "big.bin", "content_base64": big}],
    }
    response = await client.post(
        "/api/v1/emails",
        data=io.BytesIO(json.dumps(body).encode()),
        headers={**accounts[Role.OPERATOR].auth, "Content-Type": "application/json"},
    )
    assert response.status == 422
    problem = await response.json()
    assert problem["errors"][0]["field"] == "attachments"
    assert "limit" in problem["errors"][0]["message"]


async def test_an_address_on_the_suppression_list_is_refused_with_the_reason(
    hub_client: HubClient,
    sink: SmtpSink,
    accounts: dict[Role, Any],
    sessions: SessionFactory,
    anna: int,
) -> None:
    async with sessions() as session:
        await suppressions.suppress(
            session,
            Medium.EMAIL,
            "anna@client.example",
            reason="5.1.1 user unknown",
            source="bounce",
        )
        await session.commit()
    client, _ = await hub_client(sink.port)
    response = await client.post(
        "/api/v1/emails",
        json={"to": [{"address": "Anna@Client.example"}], "subject": "Hi", "text": "Hi"},
        headers=accounts[Role.OPERATOR].auth,
    )
    assert response.status == 422
    problem = await response.json()
    assert "suppression list" in problem["errors"][0]["message"]
    assert "5.1.1 user unknown" in problem["errors"][0]["message"]


async def test_the_same_idempotency_key_sends_once(
    hub_client: HubClient, sink: SmtpSink, accounts: dict[Role, Any], anna: int
) -> None:
    client, _ = await hub_client(sink.port)
    auth = {**accounts[Role.OPERATOR].auth, "Idempotency-Key": "compose-7"}
    first = await send(client, auth)
    again = await send(client, auth)
    assert again["id"] == first["id"]
    await settled(client, accounts[Role.OPERATOR].auth, first["interaction_id"])
    await asyncio.sleep(0.2)
    assert len(sink.messages) == 1


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("TLS tests: the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_and_login(
    hub_client: HubClient,
    accounts: dict[Role, Any],
    anna: int,
    certificate: tuple[Path, Path],
    security: str,
) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = SmtpSink(tls=context, implicit_tls=security == "tls", users={"sales": "pw-1"})
    await server.start()
    try:
        client, _ = await hub_client(
            server.port,
            security=security,
            username="sales",
            password="pw-1",
            ca_file=str(cert),
        )
        auth = accounts[Role.OPERATOR].auth
        queued = await send(client, auth)
        shown = await settled(client, auth, queued["interaction_id"])
        assert shown["outbox"]["state"] == "sent", shown["outbox"]
        assert len(server.messages) == 1
    finally:
        await server.close()


async def test_a_wrong_password_fails_with_the_login_refusal_not_the_password(
    hub_client: HubClient,
    accounts: dict[Role, Any],
    anna: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = SmtpSink(users={"sales": "right"})
    await server.start()
    try:
        client, _ = await hub_client(server.port, username="sales", password="wrong-secret")
        auth = accounts[Role.OPERATOR].auth
        queued = await send(client, auth)
        shown = await settled(client, auth, queued["interaction_id"], timeout=30)
        assert shown["outbox"]["state"] == "failed"
        assert "login refused" in shown["outbox"]["last_error"]
        assert "wrong-secret" not in caplog.text
    finally:
        await server.close()


async def test_an_idempotency_key_used_for_another_message_is_refused(
    hub_client: HubClient, sink: SmtpSink, accounts: dict[Role, Any], anna: int
) -> None:
    """As payment APIs do: the same key with another body is a client's mistake, not a retry."""
    client, _ = await hub_client(sink.port)
    auth = {**accounts[Role.OPERATOR].auth, "Idempotency-Key": "compose-8"}
    first = await send(client, auth, text="The first text")
    response = await client.post(
        "/api/v1/emails",
        json={"to": [{"address": "anna@client.example"}], "subject": "x", "text": "Another"},
        headers=auth,
    )
    assert response.status == 422
    problem = await response.json()
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert "different request" in problem["errors"][0]["message"]
    await settled(client, accounts[Role.OPERATOR].auth, first["interaction_id"])
    assert len(sink.messages) == 1


async def _cut_off(sessions: SessionFactory, outbox_id: int) -> None:
    """Leave a row as a process killed mid-hand-over leaves it: held by a dead holder."""
    async with sessions() as session:
        row = await session.get(Outbox, outbox_id)
        assert row is not None
        row.state = "sending"
        row.claimed_by = "gone-host:4242:dead:email"
        row.claimed_at = row.created_at
        row.lease_until = row.created_at
        row.attempts = 1
        row.sent_at = None
        interaction = await session.get(Interaction, row.interaction_id)
        assert interaction is not None
        interaction.status = "queued"
        await session.commit()


async def _sent_then_cut_off(
    hub_client: HubClient,
    sink: SmtpSink,
    accounts: dict[Role, Any],
    sessions: SessionFactory,
    subject: str,
) -> tuple[Client, dict[str, Any]]:
    """An e-mail sent, then left as a kill mid-hand-over leaves it; the sink emptied."""
    client, _ = await hub_client(sink.port)
    operator = accounts[Role.OPERATOR].auth
    queued = await send(client, operator, subject=subject)
    await settled(client, operator, queued["interaction_id"])
    sink.messages.clear()
    await _cut_off(sessions, queued["id"])
    return client, queued


async def test_a_message_cut_off_mid_hand_over_is_shown_as_uncertain_and_sent_only_when_asked(
    hub_client: HubClient,
    sink: SmtpSink,
    accounts: dict[Role, Any],
    anna: int,
    sessions: SessionFactory,
) -> None:
    client, queued = await _sent_then_cut_off(hub_client, sink, accounts, sessions, "Cut off")
    operator, manager = accounts[Role.OPERATOR].auth, accounts[Role.MANAGER].auth

    async def uncertain() -> list[dict[str, Any]]:
        response = await client.get("/api/v1/outbox?channel=email", headers=manager)
        assert response.status == 200, await response.text()
        items: list[dict[str, Any]] = (await response.json())["items"]
        return items

    async def listed() -> None:
        while not await uncertain():
            await asyncio.sleep(0.1)

    await asyncio.wait_for(listed(), 20)
    [row] = await uncertain()
    assert row["id"] == queued["id"] and "not known whether" in row["reason"]
    card = await client.get(f"/api/v1/emails/{queued['interaction_id']}", headers=operator)
    assert (await card.json())["status"] == "uncertain"
    assert sink.messages == []  # never resent by itself

    refused = await client.post(f"/api/v1/outbox/{queued['id']}/resend", headers=operator)
    assert refused.status == 403
    resent = await client.post(f"/api/v1/outbox/{queued['id']}/resend", headers=manager)
    assert resent.status == 200, await resent.text()
    mail = await settled(client, operator, queued["interaction_id"])
    assert mail["outbox"]["state"] == "sent" and mail["status"] == "sent"
    assert len(sink.messages) == 1
    assert await uncertain() == []
    again = await client.post(f"/api/v1/outbox/{queued['id']}/resend", headers=manager)
    assert again.status == 409


async def test_a_dismissed_uncertain_message_leaves_the_list_and_is_not_sent(
    hub_client: HubClient,
    sink: SmtpSink,
    accounts: dict[Role, Any],
    anna: int,
    sessions: SessionFactory,
) -> None:
    client, queued = await _sent_then_cut_off(hub_client, sink, accounts, sessions, "Cut too")
    manager = accounts[Role.MANAGER].auth

    async def dismissed() -> None:
        while True:
            answer = await client.post(f"/api/v1/outbox/{queued['id']}/dismiss", headers=manager)
            if answer.status == 200:
                return
            assert answer.status == 409  # still 'sending' until the lease is seen to lapse
            await asyncio.sleep(0.2)

    await asyncio.wait_for(dismissed(), 20)
    listed = await client.get("/api/v1/outbox", headers=manager)
    assert (await listed.json())["items"] == []
    gone = await client.get("/api/v1/outbox?state=dismissed", headers=manager)
    [row] = (await gone.json())["items"]
    assert row["state"] == "dismissed" and row["resolved_by"] is not None
    await asyncio.sleep(0.3)
    assert sink.messages == []
