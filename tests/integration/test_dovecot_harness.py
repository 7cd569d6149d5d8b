"""The Dovecot harness does what the IMAP adapter's tests rely on, checked with plain imaplib.

Every check reads the server through a fresh client of its own, so a harness
method that only seemed to work (say, a UIDVALIDITY change cached in one
session) fails here rather than in the adapter's tests.
"""

from __future__ import annotations

import asyncio
import re
import socket
from imaplib import IMAP4

import pytest

from dovecot import DovecotServer

USER = "agent"
PASSWORD = "s3cret pass"


def message(subject: str) -> bytes:
    return (
        f"From: customer@example.com\r\nTo: sales@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.com>\r\n\r\nHello, {subject}.\r\n"
    ).encode()


def fetch_bodies(server: DovecotServer) -> tuple[int, dict[int, bytes]]:
    """INBOX's UIDVALIDITY and each message's bytes as a new client sees them after SELECT."""
    with server.imap(USER) as imap:
        status, _ = imap.select("INBOX", readonly=True)
        assert status == "OK"
        uidvalidity = int(imap.untagged_responses["UIDVALIDITY"][0])
        status, data = imap.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
    bodies = {}
    for item in data:
        if isinstance(item, tuple):
            uid = re.search(rb"UID (\d+)", item[0])
            assert uid is not None
            bodies[int(uid.group(1))] = item[1]
    return uidvalidity, bodies


def capabilities_until_logged_in(server: DovecotServer) -> list[bytes]:
    """Every line that can carry CAPABILITY: the greeting, LOGIN's OK and the command's reply."""
    with socket.create_connection((server.host, server.port), timeout=5) as connection:
        replies = connection.makefile("rb")
        lines = [replies.readline()]
        connection.sendall(f'a LOGIN {USER} "{PASSWORD}"\r\nb CAPABILITY\r\nc LOGOUT\r\n'.encode())
        lines += [line for line in replies if b"CAPABILITY" in line]
    return lines


def idling_client(server: DovecotServer) -> IMAP4:
    """A client in IDLE on INBOX (RFC 2177), past the server's "+ idling"."""
    imap = IMAP4(server.host, server.port, timeout=5)
    imap.login(USER, PASSWORD)
    imap.select("INBOX")
    imap.send(b"i1 IDLE\r\n")
    assert imap.readline().startswith(b"+ ")
    return imap


@pytest.fixture
def server(dovecot: DovecotServer) -> DovecotServer:
    dovecot.add_user(USER, PASSWORD)
    return dovecot


async def test_append_gives_rising_uids_and_a_new_client_reads_the_bytes_unchanged(
    server: DovecotServer,
) -> None:
    first = await server.append(USER, message("first"), flags=["\\Seen", "$Commhub"])
    second = await server.append(USER, message("second"))

    assert second > first
    assert await server.uids(USER) == [first, second]
    assert await server.flags(USER, first) == {"\\Seen", "$Commhub"}
    assert await server.flags(USER, second) == set()
    _, bodies = await asyncio.to_thread(fetch_bodies, server)
    assert bodies == {first: message("first"), second: message("second")}


@pytest.mark.parametrize(
    ("dovecot", "advertised"),
    [({"idle": True}, True), ({"idle": False}, False)],
    indirect=["dovecot"],
)
async def test_idle_is_advertised_only_when_enabled(
    server: DovecotServer, advertised: bool
) -> None:
    lines = await asyncio.to_thread(capabilities_until_logged_in, server)

    greeting, logged_in, command = lines[0], lines[1], lines[2]
    assert greeting.startswith(b"* OK [CAPABILITY ")
    assert logged_in.startswith(b"a OK [CAPABILITY ")
    assert command.startswith(b"* CAPABILITY ")
    for line in (greeting, logged_in, command):
        assert (b" IDLE " in line) is advertised, line


async def test_changed_uidvalidity_keeps_the_messages_and_shows_on_a_new_connection(
    server: DovecotServer,
) -> None:
    uids = [await server.append(USER, message(f"kept {n}")) for n in range(3)]
    before = await server.uidvalidity(USER)

    after = await server.change_uidvalidity(USER)

    assert after != before
    assert await server.uidvalidity(USER) == after
    uidvalidity, bodies = await asyncio.to_thread(fetch_bodies, server)
    assert uidvalidity == after
    assert sorted(bodies) == uids
    assert bodies[uids[0]] == message("kept 0")


async def test_kick_closes_a_connection_in_the_middle_of_idle(server: DovecotServer) -> None:
    imap = await asyncio.to_thread(idling_client, server)
    try:
        await server.kick(USER)

        imap.sock.settimeout(2)
        rest = await asyncio.to_thread(imap.file.read)
    finally:
        imap.shutdown()
    assert rest.startswith(b"* BYE "), rest


async def test_append_many_adds_500_messages_in_their_order(server: DovecotServer) -> None:
    await server.append_many(USER, [message(f"bulk {n}") for n in range(500)])

    uids = await server.uids(USER)
    assert len(uids) == 500
    _, bodies = await asyncio.to_thread(fetch_bodies, server)
    assert [bodies[uid] for uid in uids] == [message(f"bulk {n}") for n in range(500)]


async def test_folders_with_dots_and_umlauts_are_created_filled_and_emptied(
    server: DovecotServer,
) -> None:
    await server.create_folder(USER, "Clients/Acme Inc.")
    await server.create_folder(USER, "Entwürfe")
    await server.append_many(USER, [message("filed")], folder="Clients/Acme Inc.")
    uid = await server.append(USER, message("draft"), folder="Entwürfe", flags=["\\Draft"])

    assert {"INBOX", "Clients", "Clients/Acme Inc.", "Entwürfe"} <= await server.folders(USER)
    assert len(await server.uids(USER, "Clients/Acme Inc.")) == 1
    assert await server.flags(USER, uid, "Entwürfe") == {"\\Draft"}

    await server.expunge_all(USER, "Clients/Acme Inc.")
    assert await server.uids(USER, "Clients/Acme Inc.") == []
