"""Mail read over IMAP lands on the right card: a real Dovecot, the real core, both databases.

The hub is wired the way it runs: the inbound path's sink takes the
mailbox channel's events and files them; the watcher marks or moves a
message on the server only once it is stored. Each test looks at what a
person would: the interaction on the contact's card, its e-mail row, the
folder's cursor, and the message's flags on the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

import commhub_email
from commhub.channels import ChannelContext
from commhub.domain.contacts import ContactDraft
from commhub.domain.email_compose import Recipient
from commhub.models import Email, EmailCursorRow, Interaction, MailFailure, Suppression
from commhub.services.contacts import create_contact
from commhub.services.email_cursors import StoredCursors
from commhub.services.email_sending import EmailRequest, queue_email
from commhub.services.inbound import Inbound
from commhub.services.live import LiveFeed
from commhub.store.engine import SessionFactory
from commhub_email.mailbox import MailboxChannel
from dovecot import DovecotServer

T = TypeVar("T")

MAILBOX = "sales"
ADDRESS = "sales@example.com"
USER = "sales"
PASSWORD = 'imap "s3cr3t" \\7'  # escaped when quoted on the wire; never logged either way
CUSTOMER = "ivan@customer.example"
DEADLINE_S = 10.0


def mail(
    subject: str,
    *,
    sender: str = CUSTOMER,
    headers: str = "",
    body: str = "Hello, could you send the price list?",
) -> bytes:
    """A small message with a Message-ID made from its subject, CRLF line ends."""
    key = subject.lower().replace(" ", "-")
    return (
        f"From: Ivan Petrov <{sender}>\r\nTo: {ADDRESS}\r\nSubject: {subject}\r\n"
        f"Date: Tue, 24 Nov 2026 10:00:00 +0300\r\nMessage-ID: <{key}@customer.example>\r\n"
        f"{headers}\r\n{body}\r\n"
    ).encode()


def options(
    server: DovecotServer,
    *,
    max_message_mb: float = 25.0,
    smtp: bool = False,
    imap: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The mailbox's ``[[channels]]`` options as an admin would write them."""
    settings: dict[str, Any] = {
        "address": ADDRESS,
        "max_message_mb": max_message_mb,
        "imap": {
            "host": server.host,
            "port": server.port,
            "security": "plain",
            "username": USER,
            "password": PASSWORD,
            "reconnect_max_s": 1.0,
            **(imap or {}),
        },
    }
    if smtp:  # queue_email only builds the message; nothing connects to this port
        settings["smtp"] = {"host": "127.0.0.1", "port": 2525, "security": "plain"}
    return settings


def channel(sessions: SessionFactory, server: DovecotServer, **settings: Any) -> MailboxChannel:
    return commhub_email.adapter(
        name=MAILBOX,
        options=options(server, **settings),
        context=ChannelContext(phone_region="RU", email_cursors=StoredCursors(sessions)),
    )


@contextlib.asynccontextmanager
async def hub(
    sessions: SessionFactory, server: DovecotServer, **settings: Any
) -> AsyncIterator[MailboxChannel]:
    """The core and one mailbox channel, started as the hub starts them and stopped after."""
    inbound = Inbound(db=sessions, feed=LiveFeed(), region="RU")
    await inbound.start()
    inbound.mail.add_mailbox(MAILBOX, ADDRESS)
    mailbox = channel(sessions, server, **settings)
    await mailbox.start(inbound.sink)
    try:
        yield mailbox
    finally:
        await mailbox.stop()
        await inbound.stop()


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = DEADLINE_S) -> T:
    """Poll ``check`` until it gives something truthy; at the deadline, fail with its last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            pytest.fail(f"not reached within {timeout} s (last: {value!r})")
        await asyncio.sleep(0.05)


def status(mailbox: MailboxChannel) -> dict[str, Any]:
    [watcher] = mailbox.watchers
    return watcher.status()


async def watching(mailbox: MailboxChannel) -> dict[str, Any]:
    """Wait until the watcher is connected; its status then."""

    async def ready() -> dict[str, Any] | None:
        now = status(mailbox)
        return now if now["connected"] else None

    return await eventually(ready)


async def card(sessions: SessionFactory, contact_id: int | None = None) -> list[Interaction]:
    """E-mail interactions, oldest first; those on one contact's card when it is given."""
    async with sessions() as session:
        query = select(Interaction).where(Interaction.channel == "email")
        if contact_id is not None:
            query = query.where(Interaction.contact_id == contact_id)
        return list(await session.scalars(query.order_by(Interaction.id)))


async def count(sessions: SessionFactory, n: int) -> list[Interaction]:
    async def check() -> list[Interaction]:
        found = await card(sessions)
        assert len(found) <= n, [row.subject for row in found]
        return found if len(found) == n else []

    return await eventually(check)


async def email_of(sessions: SessionFactory, interaction_id: int) -> Email:
    async with sessions() as session:
        row = await session.scalar(select(Email).where(Email.interaction_id == interaction_id))
    assert row is not None
    return row


async def cursor(sessions: SessionFactory) -> EmailCursorRow | None:
    async with sessions() as session:
        return await session.get(EmailCursorRow, (MAILBOX, "INBOX"))


async def failures(sessions: SessionFactory) -> list[MailFailure]:
    async with sessions() as session:
        return list(await session.scalars(select(MailFailure)))


async def customer(sessions: SessionFactory, address: str = CUSTOMER) -> int:
    view = await create_contact(
        sessions,
        ContactDraft(name="Ivan Petrov", emails=(address,)),
        owner_id=None,
        source="test",
    )
    return view.id


@pytest.fixture
def server(dovecot: DovecotServer) -> DovecotServer:
    dovecot.add_user(USER, PASSWORD)
    return dovecot


async def test_mail_arriving_while_the_hub_runs_lands_on_the_senders_card_via_idle(
    sessions: SessionFactory, server: DovecotServer
) -> None:
    contact_id = await customer(sessions)
    async with hub(sessions, server) as mailbox:
        assert (await watching(mailbox))["idle"] is True
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        uid = await server.append(USER, mail("Price list"))
        [row] = await eventually(lambda: card(sessions, contact_id), timeout=5)
        assert loop.time() - sent_at < 5
        assert row.direction == "in" and row.status == "received"
        assert row.subject == "Price list" and row.external_id == "price-list@customer.example"
        email = await email_of(sessions, row.id)
        assert (email.folder, email.uid, email.truncated) == ("INBOX", uid, False)
        assert email.raw == mail("Price list")
        saved = await cursor(sessions)
        assert saved is not None
        assert (saved.uidvalidity, saved.last_uid) == (await server.uidvalidity(USER), uid)
        assert "\\Seen" not in await server.flags(USER, uid)  # read with PEEK, left as it was
        now = status(mailbox)
        assert now["imported"] == 1 and now["last_uid"] == uid and now["last_event_at"]


async def test_mail_that_came_while_the_hub_was_stopped_is_imported_once_in_batches(
    sessions: SessionFactory, server: DovecotServer
) -> None:
    await server.append(USER, mail("Before"))
    async with hub(sessions, server):
        await count(sessions, 1)
    uids = [await server.append(USER, mail(f"While stopped {n}")) for n in range(5)]
    async with hub(sessions, server, imap={"batch": 2}) as mailbox:
        rows = await count(sessions, 6)
        assert status(mailbox)["imported"] == 5  # only the new ones were offered
    assert [row.subject for row in rows[1:]] == [f"While stopped {n}" for n in range(5)]
    saved = await cursor(sessions)
    assert saved is not None and saved.last_uid == uids[-1]


async def test_a_full_folder_is_imported_once_in_uid_order(
    sessions: SessionFactory, server: DovecotServer
) -> None:
    await server.append_many(USER, [mail(f"Old {n:03}") for n in range(250)])
    async with hub(sessions, server) as mailbox:
        rows = await count(sessions, 250)
        assert status(mailbox)["last_uid"] == max(await server.uids(USER))
    assert [row.subject for row in rows] == [f"Old {n:03}" for n in range(250)]


async def test_a_connection_killed_mid_idle_reconnects_and_imports_what_came_meanwhile(
    sessions: SessionFactory, server: DovecotServer
) -> None:
    await server.append(USER, mail("First"))
    async with hub(sessions, server) as mailbox:
        await count(sessions, 1)
        await watching(mailbox)
        await server.kick(USER)
        await server.append(USER, mail("After the kick"))
        rows = await count(sessions, 2)
        assert rows[1].subject == "After the kick"
        assert (await watching(mailbox))["reconnects"] >= 1
        await server.append(USER, mail("Later"))
        await count(sessions, 3)


async def test_a_new_uidvalidity_reimports_the_folder_without_duplicates(
    sessions: SessionFactory, server: DovecotServer
) -> None:
    for subject in ("One", "Two"):
        await server.append(USER, mail(subject))
    async with hub(sessions, server):
        await count(sessions, 2)
    new = await server.change_uidvalidity(USER)
    async with hub(sessions, server) as mailbox:

        async def moved() -> EmailCursorRow | None:
            saved = await cursor(sessions)
            return saved if saved is not None and saved.uidvalidity == new else None

        saved = await eventually(moved)
        assert saved.last_uid == max(await server.uids(USER))
        assert status(mailbox)["uidvalidity"] == new
        await server.append(USER, mail("Three"))
        rows = await count(sessions, 3)
    assert [row.subject for row in rows] == ["One", "Two", "Three"]


async def test_a_uidvalidity_changed_under_a_running_watcher_is_followed(
    sessions: SessionFactory, server: DovecotServer
) -> None:
    await server.append(USER, mail("One"))
    async with hub(sessions, server) as mailbox:
        await count(sessions, 1)
        await watching(mailbox)
        new = await server.change_uidvalidity(USER)  # Dovecot ends the session with BYE
        await server.append(USER, mail("Two"))
        rows = await count(sessions, 2)
        now = await watching(mailbox)
    assert [row.subject for row in rows] == ["One", "Two"]
    assert now["uidvalidity"] == new and now["reconnects"] >= 1
    saved = await cursor(sessions)
    assert saved is not None and saved.uidvalidity == new


async def test_an_unreadable_message_is_kept_with_its_reason_and_not_retried(
    sessions: SessionFactory, server: DovecotServer
) -> None:
    bad = await server.append(USER, b"just some words, no header here\r\n")
    await server.append(USER, mail("Readable"))
    async with hub(sessions, server):
        [row] = await count(sessions, 1)
        assert row.subject == "Readable"
        [failure] = await failures(sessions)
    assert (failure.folder, failure.uid) == ("INBOX", bad)
    assert "header" in failure.error and failure.raw == b"just some words, no header here\r\n"
    async with hub(sessions, server):
        await server.append(USER, mail("After restart"))
        await count(sessions, 2)
    assert len(await failures(sessions)) == 1


def delivery_report(original_id: str, recipient: str) -> bytes:
    """A standard non-delivery report (RFC 3464) about our message ``original_id``."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\r\n"
        f"To: {ADDRESS}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.customer.example>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "Your message could not be delivered.\r\n"
        "\r\n--b1\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
        "\r\n--b1\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"From: {ADDRESS}\r\nTo: {recipient}\r\nSubject: Offer\r\n"
        f"Message-ID: <{original_id}>\r\n"
        "\r\n--b1--\r\n"
    ).encode()


async def test_a_bounce_marks_our_message_bounced_and_suppresses_the_address(
    sessions: SessionFactory, server: DovecotServer
) -> None:
    gone = "gone@customer.example"
    mailer = channel(sessions, server, smtp=True)
    async with sessions() as session:
        outbox, _ = await queue_email(
            session,
            mailer,
            EmailRequest(to=(Recipient(gone),), subject="Offer", text="Our offer."),
            user_id=None,
            region="RU",
        )
        ours = await session.get(Interaction, outbox.interaction_id)
        assert ours is not None
        message_id, ours_id = ours.external_id, ours.id
    await server.append(USER, delivery_report(message_id, gone))
    async with hub(sessions, server):
        await count(sessions, 2)

        async def bounced() -> Interaction | None:
            async with sessions() as session:
                row = await session.get(Interaction, ours_id)
            return row if row is not None and row.status == "bounced" else None

        await eventually(bounced)
    async with sessions() as session:
        [entry] = await session.scalars(select(Suppression))
    assert entry.address == gone and "5.1.1" in entry.reason and "User unknown" in entry.reason


async def test_an_auto_reply_is_filed_as_one(
    sessions: SessionFactory, server: DovecotServer
) -> None:
    await server.append(
        USER, mail("Out of office", headers="Auto-Submitted: auto-replied\r\n", body="Away.")
    )
    async with hub(sessions, server):
        [row] = await count(sessions, 1)
    assert row.extra["kind"] == "auto_reply"


async def test_a_reply_joins_the_thread_of_the_message_it_answers(
    sessions: SessionFactory, server: DovecotServer
) -> None:
    await server.append(USER, mail("Question"))
    await server.append(USER, mail("Something else"))
    async with hub(sessions, server):
        await count(sessions, 2)
        await server.append(
            USER,
            mail("Re Question", headers="In-Reply-To: <question@customer.example>\r\n"),
        )
        first, other, reply = await count(sessions, 3)
    threads = [(await email_of(sessions, row.id)).thread_id for row in (first, other, reply)]
    assert threads[2] == threads[0] and threads[1] != threads[0]


@pytest.mark.parametrize("dovecot", [{"idle": False}], indirect=True)
async def test_without_idle_the_folder_is_polled(
    sessions: SessionFactory, server: DovecotServer
) -> None:
    async with hub(sessions, server, imap={"poll_s": 0.5}) as mailbox:
        assert (await watching(mailbox))["idle"] is False
        await server.append(USER, mail("Polled"))
        [row] = await eventually(lambda: card(sessions), timeout=3)
    assert row.subject == "Polled"


@pytest.mark.parametrize(("processed", "flag"), [("seen", "\\Seen"), ("flag:$Filed", "$Filed")])
async def test_processed_flags_the_message_on_the_server_once_it_is_stored(
    sessions: SessionFactory, server: DovecotServer, processed: str, flag: str
) -> None:
    uid = await server.append(USER, mail("Mark me"))
    async with hub(sessions, server, imap={"processed": processed}):
        await count(sessions, 1)
        await eventually(lambda: _has_flag(server, uid, flag))
    assert await server.uids(USER) == [uid]


async def _equals(value: Awaitable[T], expected: T) -> bool:
    return await value == expected


async def _has_flag(server: DovecotServer, uid: int, flag: str) -> bool:
    return flag in await server.flags(USER, uid)


async def test_processed_move_files_the_message_into_the_folder_and_not_again(
    sessions: SessionFactory, server: DovecotServer
) -> None:
    archive = {"processed": "move:Архив"}  # created at connect; sent as modified UTF-7
    await server.append(USER, mail("Move me"))

    async def archived() -> int:
        return 0 if await server.uids(USER) else len(await server.uids(USER, "Архив"))

    async with hub(sessions, server, imap=archive):
        await count(sessions, 1)
        assert await eventually(archived) == 1
    assert "Архив" in await server.folders(USER)
    async with hub(sessions, server, imap=archive):
        await server.append(USER, mail("Next one"))
        rows = await count(sessions, 2)
        await eventually(lambda: _equals(archived(), 2))
    assert [row.subject for row in rows] == ["Move me", "Next one"]


async def test_idle_is_renewed_before_the_server_would_drop_it(
    sessions: SessionFactory, server: DovecotServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="commhub_email.imap")
    async with hub(sessions, server, imap={"idle_renew_s": 0.2}) as mailbox:
        await watching(mailbox)

        async def renewed() -> bool:
            return caplog.text.count("IDLE renewed") >= 3

        await eventually(renewed, timeout=3)
        await server.append(USER, mail("After renewals"))
        await count(sessions, 1)
        assert status(mailbox)["reconnects"] == 0


async def test_a_message_over_the_limit_is_filed_with_its_header_only(
    sessions: SessionFactory, server: DovecotServer
) -> None:
    big = mail("Big attachment", body="x" * 4000)
    small = mail("Small")
    await server.append(USER, big)
    await server.append(USER, small)
    async with hub(sessions, server, max_message_mb=0.002):  # 2097 bytes
        large_row, small_row = await count(sessions, 2)
    large = await email_of(sessions, large_row.id)
    assert large.truncated is True and large_row.extra["truncated"] is True
    assert large.size == len(big)
    assert large.raw == big[: big.index(b"\r\n\r\n") + 4]
    whole = await email_of(sessions, small_row.id)
    assert whole.truncated is False and whole.raw == small


async def test_a_refused_login_is_reported_without_the_password_and_retried(
    sessions: SessionFactory, dovecot: DovecotServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Dovecot re-reads its passwd-file when the file's mtime (in seconds) or size
    # changes: the new password must differ in length for the change to be seen at once.
    dovecot.add_user(USER, "old")
    await dovecot.append(USER, mail("Waiting"))
    async with hub(sessions, dovecot) as mailbox:

        async def refused() -> str | None:
            return status(mailbox)["error"]

        error = await eventually(refused)
        assert "login" in error and "s3cr3t" not in error
        assert not status(mailbox)["connected"]
        dovecot.add_user(USER, PASSWORD)  # the admin sets the password the hub was given
        await count(sessions, 1)
        assert status(mailbox)["error"] is None
    assert "s3cr3t" not in caplog.text


async def test_status_says_what_the_watcher_is_doing(
    sessions: SessionFactory, server: DovecotServer
) -> None:
    before = status(channel(sessions, server))
    assert before["connected"] is False and before["idle"] is None
    assert before["connected_since"] is None and before["last_event_at"] is None
    async with hub(sessions, server) as mailbox:
        now = await watching(mailbox)
        assert now["folder"] == "INBOX" and now["error"] is None and now["idle"] is True
        assert now["uidvalidity"] == await server.uidvalidity(USER)
        assert now["connected_since"] is not None and now["reconnects"] == 0
        health = mailbox.health()
        assert health.connected and health.detail["folders"][0]["folder"] == "INBOX"
    after = status(mailbox)
    assert after["connected"] is False and after["connected_since"] is None
