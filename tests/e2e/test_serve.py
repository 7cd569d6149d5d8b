"""The README's run command end to end: a real `commhub serve` process on embedded defaults."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from ami_replay import AmiReplayServer
from dovecot import DovecotServer
from smtp_sink import SmtpSink


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _commhub(*args: str, env: dict[str, str], stdin: bytes | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "commhub",
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate(stdin)
    return process.returncode or 0, out.decode()


async def _serve(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    """``commhub serve`` as a user starts it, its output on one pipe."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "commhub",
        "serve",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_fresh_hub_serves_api_with_a_printed_admin(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMHUB_")},
        "COMMHUB_DATA_DIR": str(tmp_path / "var"),
        "COMMHUB_PHONE_REGION": "RU",
        "COMMHUB_PORT": str(port),
    }
    server = await _serve(env, tmp_path)
    assert server.stdout is not None
    output = ""
    try:
        while "commhub serving on" not in output:
            line = await asyncio.wait_for(server.stdout.readline(), timeout=60)
            assert line, f"serve exited early:\n{output}"
            output += line.decode()
        found = re.search(r"user 'admin' with password (\S+)", output)
        assert found, output
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            for _ in range(100):
                try:
                    async with http.get(f"{base}/api/v1/health") as health:
                        if health.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            login = await http.post(
                f"{base}/api/v1/auth/login",
                json={"username": "admin", "password": found.group(1)},
            )
            assert login.status == 200
            csrf = (await login.json())["csrf_token"]
            created = await http.post(
                f"{base}/api/v1/contacts",
                json={"name": "Ivan", "phones": ["+7 916 123-45-67"]},
                headers={"X-CSRF-Token": csrf},
            )
            assert created.status == 201, await created.text()
            contact_id = (await created.json())["id"]
        status, said = await _commhub("identify", "8 916 123 45 67", env=env)
        assert (status, said.strip()) == (0, f"+79161234567: contact {contact_id}")
        status, said = await _commhub("identify", "+79990000000", env=env)
        assert status == 1 and "unknown" in said
    finally:
        server.send_signal(signal.SIGINT)
        await asyncio.wait_for(server.wait(), timeout=30)
    assert (tmp_path / "var" / "commhub.db").exists()


async def test_cli_user_add_and_clear_errors(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMHUB_")},
        "COMMHUB_DATA_DIR": str(tmp_path / "var"),
    }
    status, said = await _commhub("migrate", env=env)
    assert status == 0 and "revision" in said
    status, said = await _commhub(
        "user",
        "add",
        "olga",
        "--role",
        "operator",
        "--extension",
        "201",
        "--password-stdin",
        env=env,
        stdin=b"a long enough password\n",
    )
    assert status == 0, said
    status, said = await _commhub(
        "user",
        "add",
        "olga",
        "--role",
        "operator",
        "--password-stdin",
        env=env,
        stdin=b"another long password\n",
    )
    assert status == 1
    assert said.strip() == "Error: username 'olga' is taken"
    status, said = await _commhub(
        "user", "password", "olga", "--password-stdin", env=env, stdin=b"a forgotten one, reset\n"
    )
    assert status == 0, said
    status, said = await _commhub(
        "user", "password", "nobody", "--password-stdin", env=env, stdin=b"whatever it is here\n"
    )
    assert status == 1
    assert said.strip() == "Error: no user named 'nobody'"
    status, said = await _commhub("identify", "x", env={**env, "COMMHUB_PHONE_REGION": "XX"})
    assert status == 1
    assert said.strip().startswith("Error: invalid setting COMMHUB_PHONE_REGION")


CHANNELS = """
[[channels]]
adapter = "asterisk"
name = "main"
host = "127.0.0.1"
port = {port}
username = "commhub"
secret = "{secret}"
region = "RU"
"""


async def test_serve_connects_the_pbx_named_in_the_channels_file(tmp_path: Path) -> None:
    pbx = AmiReplayServer(username="commhub", secret="a PBX secret")
    await pbx.start()
    (tmp_path / "channels.toml").write_text(CHANNELS.format(port=pbx.port, secret=pbx.secret))
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMHUB_")},
        "COMMHUB_DATA_DIR": str(tmp_path / "var"),
        "COMMHUB_PORT": str(port),
        "COMMHUB_CHANNELS_FILE": str(tmp_path / "channels.toml"),
        "COMMHUB_ADMIN_PASSWORD": "the admin's password",
    }
    server = await _serve(env, tmp_path)
    try:
        await pbx.wait_logins(1, timeout=60)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            for _ in range(100):
                try:
                    login = await http.post(
                        f"{base}/api/v1/auth/login",
                        json={"username": "admin", "password": "the admin's password"},
                    )
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            assert login.status == 200
            async with http.get(f"{base}/api/v1/channels") as health:
                [main] = (await health.json())["items"]
        assert main["name"] == "main" and main["kind"] == "asterisk"
        assert main["connected"] is True and main["error"] is None
    finally:
        server.send_signal(signal.SIGINT)
        await asyncio.wait_for(server.wait(), timeout=30)
        await pbx.close()
    assert server.stdout is not None
    output = (await server.stdout.read()).decode()
    assert "connected to 127.0.0.1" in output and pbx.secret not in output
    assert any(action.get("Action") == "Logoff" for action in pbx.actions)


async def test_a_bad_channels_file_stops_serve_with_the_setting_at_fault(tmp_path: Path) -> None:
    channels = tmp_path / "channels.toml"
    channels.write_text(CHANNELS.format(port=70000, secret="x"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMHUB_")},
        "COMMHUB_DATA_DIR": str(tmp_path / "var"),
        "COMMHUB_CHANNELS_FILE": str(channels),
    }
    status, said = await _commhub("serve", env=env)
    assert status == 1
    assert said.strip().splitlines() == [
        "Error: PBX 'main': port: Input should be less than or equal to 65535"
    ]
    channels.write_text('[[channels]]\nadapter = "fax"\nname = "x"\n')
    status, said = await _commhub("serve", env=env)
    assert (
        status == 1
        and "unknown adapter 'fax' (known: asterisk, email, kannel, smpp, twilio)" in said
    )


MAILBOX = """
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
password = "{password}"
idle_renew_s = 60
"""


async def test_serve_sends_and_receives_mail_through_the_mailbox_in_the_channels_file(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    sink = SmtpSink()
    await sink.start()
    dovecot.add_user("sales", "imap secret never logged")
    (tmp_path / "channels.toml").write_text(
        MAILBOX.format(
            smtp_port=sink.port, imap_port=dovecot.port, password="imap secret never logged"
        )
    )
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMHUB_")},
        "COMMHUB_DATA_DIR": str(tmp_path / "var"),
        "COMMHUB_PORT": str(port),
        "COMMHUB_CHANNELS_FILE": str(tmp_path / "channels.toml"),
        "COMMHUB_ADMIN_PASSWORD": "the admin's password",
        "COMMHUB_CREATE_UNKNOWN_SENDERS": "true",
    }
    server = await _serve(env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            login = await _login(http, base)
            csrf = {"X-CSRF-Token": (await login.json())["csrf_token"]}
            sent = await http.post(
                f"{base}/api/v1/emails",
                json={"to": [{"address": "ivan@client.example"}], "subject": "Hi", "text": "Hi"},
                headers=csrf,
            )
            assert sent.status == 202, await sent.text()
            [ours] = await sink.wait_for(1, timeout=30)
            [message_id] = re.findall(rb"Message-ID: (<[^>]+>)", ours.data)
            await dovecot.append(
                "sales",
                b"From: Ivan <ivan@client.example>\r\nTo: sales@example.com\r\n"
                b"Subject: Re: Hi\r\nMessage-ID: <answer@client.example>\r\n"
                b"In-Reply-To: " + message_id + b"\r\n\r\nThanks\r\n",
            )
            for _ in range(300):
                log = await http.get(f"{base}/api/v1/interactions?channel=email")
                items = (await log.json())["items"]
                if len(items) == 2:
                    break
                await asyncio.sleep(0.1)
            assert sorted(item["direction"] for item in items) == ["in", "out"], await _said(server)
            # Ivan was on no card: his reply made one, and our message joined it
            [contact_id] = {item["contact_id"] for item in items}
            assert contact_id is not None
            async with http.get(f"{base}/api/v1/channels") as health:
                [sales] = (await health.json())["items"]
        assert sales["kind"] == "email" and sales["connected"] is True, sales
    finally:
        server.send_signal(signal.SIGINT)
        await asyncio.wait_for(server.wait(), timeout=30)
        await sink.close()
    assert server.stdout is not None
    output = (await server.stdout.read()).decode()
    assert "imap secret never logged" not in output


async def _login(http: aiohttp.ClientSession, base: str) -> aiohttp.ClientResponse:
    for _ in range(100):
        try:
            login = await http.post(
                f"{base}/api/v1/auth/login",
                json={"username": "admin", "password": "the admin's password"},
            )
            assert login.status == 200
            return login
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"commhub serve did not answer at {base}")


async def _said(server: asyncio.subprocess.Process) -> str:
    """What ``serve`` printed so far, for a failure message."""
    server.send_signal(signal.SIGINT)
    await asyncio.wait_for(server.wait(), timeout=30)
    assert server.stdout is not None
    return (await server.stdout.read()).decode()
