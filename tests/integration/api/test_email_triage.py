"""What people do with filed mail: unmatched senders, unreadable messages, suppressions.

Messages are filed through the core's own entry point (``file_email``, what
the inbox calls for every message an IMAP watcher hands in), then the API is
used as a person would.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from commhub.channels import EmailArrived
from commhub.domain.contacts import ContactDraft
from commhub.domain.roles import Role
from commhub.models import Contact, Interaction
from commhub.services import contacts
from commhub.services.email_filing import OwnAddress, file_email
from commhub.services.filing import Outcome
from commhub.store.engine import SessionFactory

Client = TestClient[Any, Any]
MAILBOX = OwnAddress("sales", "sales@example.com")
_uids = iter(range(1, 10_000))


async def arrive(sessions: SessionFactory, raw: bytes, *, create: bool = False) -> Outcome:
    event = EmailArrived(
        source="sales",
        folder="INBOX",
        uidvalidity=7,
        uid=next(_uids),
        raw=raw,
        settled=asyncio.get_running_loop().create_future(),
    )
    async with sessions() as session:
        filed = await file_email(session, event, MAILBOX, region="RU", create_unknown=create)
        await session.commit()
    return filed.outcome


def message(sender: str, message_id: str, subject: str = "Hello", extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: sales@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{message_id}>\r\n{extra}\r\nbody of {message_id}\r\n"
    ).encode()


async def test_unknown_sender_waits_in_unmatched_until_assigned(
    client: Client, sessions: SessionFactory, accounts: dict[Role, Any]
) -> None:
    assert await arrive(sessions, message("Stranger <new@lead.example>", "u1@lead")) is Outcome.NEW
    auth = accounts[Role.OPERATOR].auth
    page = await (await client.get("/api/v1/emails/unmatched", headers=auth)).json()
    [item] = page["items"]
    assert item["from_address"] == "new@lead.example"
    assert item["sender"] == "Stranger <new@lead.example>"

    view = await contacts.create_contact(
        sessions, ContactDraft(name="Lead"), owner_id=None, source="test"
    )
    response = await client.post(
        f"/api/v1/emails/{item['interaction_id']}/assign",
        json={"contact_id": view.id},
        headers=auth,
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["contact_id"] == view.id
    page = await (await client.get("/api/v1/emails/unmatched", headers=auth)).json()
    assert page["items"] == []

    # the address joined the card: the next mail from it needs nobody
    await arrive(sessions, message("new@lead.example", "u2@lead"))
    timeline = await client.get(f"/api/v1/contacts/{view.id}/timeline", headers=auth)
    assert len((await timeline.json())["items"]) == 2


async def test_a_sender_on_two_cards_lists_both_candidates(
    client: Client, sessions: SessionFactory, accounts: dict[Role, Any]
) -> None:
    for name in ("Shared One", "Shared Two"):
        await contacts.create_contact(
            sessions,
            ContactDraft(name=name, emails=("office@shared.example",)),
            owner_id=None,
            source="test",
        )
    await arrive(sessions, message("office@shared.example", "s1@shared"))
    page = await (
        await client.get("/api/v1/emails/unmatched", headers=accounts[Role.OPERATOR].auth)
    ).json()
    [item] = page["items"]
    assert len(item["candidates"]) == 2


async def test_unknown_senders_get_a_contact_when_configured_but_not_for_auto_replies(
    sessions: SessionFactory,
) -> None:
    await arrive(sessions, message("Новый Клиент <client@new.example>", "c1@new"), create=True)
    await arrive(
        sessions,
        message("robot@new.example", "c2@new", extra="Auto-Submitted: auto-replied\r\n"),
        create=True,
    )
    async with sessions() as session:
        names = (await session.scalars(select(Contact.name))).all()
        kinds = (await session.scalars(select(Interaction.extra))).all()
    assert names == ["Новый Клиент"]
    assert sorted(k["kind"] for k in kinds) == ["auto_reply", "message"]


async def test_the_same_message_found_twice_is_filed_once(sessions: SessionFactory) -> None:
    raw = message("a@client.example", "twice@client")
    assert await arrive(sessions, raw) is Outcome.NEW
    assert await arrive(sessions, raw) is Outcome.DUPLICATE
    without_id = b"From: a@client.example\r\nSubject: no id\r\n\r\nsame bytes\r\n"
    assert await arrive(sessions, without_id) is Outcome.NEW
    assert await arrive(sessions, without_id) is Outcome.DUPLICATE
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Interaction)) == 2


async def test_unreadable_mail_is_kept_for_an_admin_and_not_shown_to_others(
    client: Client, sessions: SessionFactory, accounts: dict[Role, Any]
) -> None:
    garbage = b"\x00\x01 this is not e-mail \xff"
    assert await arrive(sessions, garbage) is Outcome.KEPT
    admin = accounts[Role.ADMIN].auth
    page = await (await client.get("/api/v1/emails/failures", headers=admin)).json()
    [item] = page["items"]
    assert "no header" in item["error"]
    raw = await client.get(f"/api/v1/emails/failures/{item['id']}/raw", headers=admin)
    assert await raw.read() == garbage
    denied = await client.get("/api/v1/emails/failures", headers=accounts[Role.MANAGER].auth)
    assert denied.status == 403
    resolved = await client.post(f"/api/v1/emails/failures/{item['id']}/resolve", headers=admin)
    assert (await resolved.json())["resolved_at"] is not None
    page = await (await client.get("/api/v1/emails/failures", headers=admin)).json()
    assert page["items"] == []


async def test_a_hard_bounce_suppresses_the_address_until_a_manager_lifts_it(
    client: Client, sessions: SessionFactory, accounts: dict[Role, Any]
) -> None:
    report = (
        b"From: MAILER-DAEMON@mx.example\r\nTo: sales@example.com\r\nSubject: failure\r\n"
        b"Message-ID: <dsn1@mx.example>\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; gone@client.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n--b--\r\n"
    )
    await arrive(sessions, report)
    manager = accounts[Role.MANAGER].auth
    page = await (await client.get("/api/v1/suppressions?channel=email", headers=manager)).json()
    [entry] = page["items"]
    assert entry["address"] == "gone@client.example"
    assert "5.1.1" in entry["reason"]
    assert entry["source"] == "bounce dsn1@mx.example"
    lifted = await client.delete(f"/api/v1/suppressions/{entry['id']}", headers=manager)
    assert lifted.status == 204
    page = await (await client.get("/api/v1/suppressions", headers=manager)).json()
    assert page["items"] == []
