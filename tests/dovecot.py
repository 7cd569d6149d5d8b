"""A real, throwaway Dovecot IMAP server on loopback, for tests of code that speaks IMAP.

The mail adapter must cope with what a real server does — UIDPLUS replies, IDLE
pushes, a UIDVALIDITY that changes under it, a connection killed mid-IDLE — so
its tests run against Dovecot itself rather than a fake. Each ``DovecotServer``
lives in one temp directory: its own ``dovecot.conf`` (nothing from
/etc/dovecot), base_dir, state_dir, log, passwd-file and Maildir storage. It
listens for IMAP only, on 127.0.0.1 at a free port. Tests arrange mailboxes from
the side the way an administrator or another mail client would: ``doveadm`` for
folders, UIDVALIDITY, imports and kicks, ``imaplib`` where only IMAP answers
(APPENDUID).

Run as root, Dovecot keeps its own split: logins run as ``dovenull``, internal
processes as ``dovecot`` (both made by the Debian package), and mail belongs to
``nobody``, because Dovecot refuses mail access as root. Run as anyone else,
everything runs as that user (Dovecot's "rootless" setup).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from imaplib import IMAP4
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"

# Dovecot 2.3's post-login CAPABILITY (src/imap/imap-common.h CAPABILITY_STRING)
# without IDLE. ``imap_capability`` replaces the list rather than editing it,
# so hiding one extension means spelling out the rest.
_CAPABILITY_WITHOUT_IDLE = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE SORT SORT=DISPLAY THREAD=REFERENCES"
    " THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN"
    " NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES"
    " WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW"
    " STATUS=SIZE SAVEDATE LITERAL+ NOTIFY"
)
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")
_NO_USERS_KICKED = 68  # doveadm's EX_NOUSER: nobody of that name was connected


class DovecotError(RuntimeError):
    """Dovecot would not start, or a doveadm/IMAP request to it failed; says which and why."""


def dovecot_binary() -> str | None:
    """The dovecot executable, or None when Dovecot is not installed here."""
    found = shutil.which("dovecot")
    if found:
        return found
    return "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None


def _doveadm_binary(dovecot: str) -> str:
    found = shutil.which("doveadm")
    if found:
        return found
    for candidate in (Path(dovecot).with_name("doveadm"), Path("/usr/bin/doveadm")):
        if os.access(candidate, os.X_OK):
            return str(candidate)
    raise DovecotError(f"doveadm not found next to {dovecot} or on PATH")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _mailbox_argument(name: str) -> str:
    """A folder name as an IMAP argument: imaplib sends arguments verbatim.

    Modified UTF-7 (RFC 3501 §5.1.3), then a quoted string (§4.3), so
    "Entwürfe" and "Sent Items" mean the same folders as in doveadm.
    """
    encoded: list[str] = []
    run: list[str] = []

    def end_run() -> None:
        if run:
            utf16 = base64.b64encode("".join(run).encode("utf-16-be")).decode()
            encoded.append("&" + utf16.rstrip("=").replace("/", ",") + "-")
            run.clear()

    for char in name:
        if " " <= char <= "~":
            end_run()
            encoded.append("&-" if char == "&" else char)
        else:
            run.append(char)
    end_run()
    return '"' + "".join(encoded).replace("\\", "\\\\").replace('"', '\\"') + '"'


class DovecotServer:
    """One Dovecot instance on 127.0.0.1:``port``; ``start()``/``stop()`` or ``with``.

    ``idle=False`` takes IDLE out of every CAPABILITY the server sends (greeting,
    post-login, the CAPABILITY command), for clients that must fall back to polling.
    """

    host: str = HOST

    def __init__(self, *, idle: bool = True, start_timeout: float = 10.0) -> None:
        binary = dovecot_binary()
        if binary is None:
            raise DovecotError("Dovecot is not installed (no dovecot on PATH or in /usr/sbin)")
        self.idle = idle
        self.port = 0
        self._binary = binary
        self._doveadm = _doveadm_binary(binary)
        self._start_timeout = start_timeout
        self._passwords: dict[str, str] = {}
        self._directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._root = os.geteuid() == 0
        owner = pwd.getpwnam("nobody") if self._root else pwd.getpwuid(os.geteuid())
        self._mail_uid, self._mail_gid = owner.pw_uid, owner.pw_gid

    # -- lifecycle ---------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """The temp directory holding everything of this instance (gone after stop)."""
        if self._directory is None:
            raise DovecotError("the Dovecot server is not started")
        return self._directory

    def start(self) -> None:
        """Start Dovecot in the foreground and return once it greets with ``* OK``.

        The port is found by binding port 0 and released before Dovecot binds
        it; if another process takes it in between, start again on a new one.
        """
        self._directory = Path(tempfile.mkdtemp(prefix="commhub-dovecot-"))
        # Dovecot's auth process (user dovecot) reads the passwd-file and mail
        # processes (user nobody) write below this directory.
        self._directory.chmod(0o711)
        for name in ("run", "state", "home", "staging"):
            (self._directory / name).mkdir()
        self._give(self._directory / "home", self._directory / "staging")
        self._write_passwd()
        try:
            for _attempt in range(5):
                self.port = _free_port()
                (self._directory / "dovecot.conf").write_text(self._config())
                if self._launch():
                    return
            raise DovecotError(f"Dovecot could not bind a free port:\n{self.log_text()}")
        except BaseException:
            self.stop()
            raise

    def stop(self, *, wait: bool = True) -> None:
        """Stop Dovecot (SIGTERM, SIGKILL after 5 s) and delete its temp directory.

        Dovecot 2.3's master waits about a second for its log process before it
        exits. ``wait=False`` only sends SIGTERM and returns, so a caller can
        overlap that second with other work; a later ``stop()`` finishes.
        """
        process = self._process
        if process is not None:
            process.terminate()  # a no-op once it has exited
            if not wait:
                return
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            # Children that outlived the master (imap, log) would keep files
            # open in the directory about to be deleted.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            self._process = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    @property
    def running(self) -> bool:
        """Dovecot's master process is alive (it may be shutting down)."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self) -> bool:
        """Run dovecot -F; True once it greets, False if the port was taken meanwhile."""
        directory = self.directory
        # Each attempt starts with empty logs, so a failure reads as its own.
        (directory / "dovecot.log").unlink(missing_ok=True)
        with open(directory / "stderr.log", "wb") as stderr:
            # Its own session, so a Ctrl-C meant for pytest does not reach it
            # first and stop() can sweep the whole process group.
            self._process = subprocess.Popen(
                [self._binary, "-F", "-c", str(directory / "dovecot.conf")],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                if "Address already in use" in self.log_text():
                    return False
                raise DovecotError(f"Dovecot exited at start:\n{self.log_text()}")
            if self._greets():
                return True
            time.sleep(0.02)
        raise DovecotError(
            f"Dovecot did not greet on {HOST}:{self.port} within {self._start_timeout} s:\n"
            f"{self.log_text()}"
        )

    def _greets(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as probe:
                return probe.recv(4).startswith(b"* OK")
        except OSError:
            return False

    def _config(self) -> str:
        directory = self.directory
        if self._root:
            processes = "default_login_user = dovenull\ndefault_internal_user = dovecot\n"
            processes += "default_internal_group = dovecot\n"
        else:
            me = pwd.getpwuid(os.geteuid()).pw_name
            group = grp.getgrgid(os.getegid()).gr_name
            processes = (
                f"default_login_user = {me}\ndefault_internal_user = {me}\n"
                f"default_internal_group = {group}\n"
            )
        capability = "" if self.idle else f"imap_capability = {_CAPABILITY_WITHOUT_IDLE}\n"
        # chroot needs root (Dovecot wiki, HowTo/Rootless).
        chroot = "" if self._root else "  chroot =\n"
        passwd = directory / "passwd"
        return f"""\
# Written by tests/dovecot.py for one test run; deleted when the server stops.
protocols = imap
listen = {HOST}
base_dir = {directory / "run"}
state_dir = {directory / "state"}
instance_name = commhub-test-{self.port}
log_path = {directory / "dovecot.log"}
{processes}ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# A test of a wrong password must not slow the logins after it: no reply
# delay here, no per-IP penalty in anvil below (wiki: Authentication/Penalty).
auth_failure_delay = 0
first_valid_uid = {self._mail_uid}
last_valid_uid = {self._mail_uid}
first_valid_gid = {self._mail_gid}
mail_location = maildir:~/Maildir:LAYOUT=fs
# Throwaway mail: no fsync, so 10,000 appends take seconds, not minutes.
mail_fsync = never
{capability}namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
}}
service anvil {{
{chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
{chroot}  inet_listener imap {{
    address = {HOST}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""

    # -- users -------------------------------------------------------------------

    def add_user(self, username: str, password: str) -> None:
        """Add a mail user; Dovecot re-reads the passwd-file on the next login."""
        if not _USERNAME.fullmatch(username):
            raise ValueError(f"user name {username!r}: use letters, digits and ._@+-")
        if any(bad in password for bad in ":\r\n"):
            raise ValueError(f"password for {username!r} may not contain ':' or line breaks")
        self._passwords[username] = password
        if self._directory is not None:
            self._write_passwd()

    def _write_passwd(self) -> None:
        directory = self.directory
        lines = []
        for username, password in self._passwords.items():
            home = directory / "home" / username
            if not home.exists():
                home.mkdir()
                self._give(home)
            lines.append(
                f"{username}:{{PLAIN}}{password}:{self._mail_uid}:{self._mail_gid}::{home}::\n"
            )
        # Replaced in one rename, so the auth process never reads half a file.
        staged = directory / "passwd.new"
        staged.write_text("".join(lines))
        staged.chmod(0o644)
        staged.replace(directory / "passwd")

    def _give(self, *paths: Path) -> None:
        """Hand paths to the mail user, which Dovecot switches to before touching mail."""
        if self._root:
            for path in paths:
                os.chown(path, self._mail_uid, self._mail_gid)

    # -- mail --------------------------------------------------------------------

    async def append(
        self, user: str, raw: bytes, folder: str = "INBOX", flags: Sequence[str] = ()
    ) -> int:
        """APPEND one message over IMAP and return its UID (APPENDUID, RFC 4315 §3).

        imaplib sends line ends as CRLF (RFC 3501 §4.3), so pass CRLF-terminated
        bytes to read back exactly what was appended.
        """
        return await asyncio.to_thread(self._append_blocking, user, raw, folder, tuple(flags))

    def _append_blocking(self, user: str, raw: bytes, folder: str, flags: tuple[str, ...]) -> int:
        with self.imap(user) as imap:
            status, data = imap.append(
                _mailbox_argument(folder), f"({' '.join(flags)})" if flags else None, None, raw
            )
        reply = data[0] if data and isinstance(data[0], bytes) else b""
        found = _APPENDUID.search(reply)
        if status != "OK" or found is None:
            raise DovecotError(f"APPEND to {folder!r} of {user!r}: {status} {reply!r}")
        return int(found.group(1))

    async def append_many(self, user: str, raws: Sequence[bytes], folder: str = "INBOX") -> None:
        """Add many messages at once, in order, through ``doveadm import``.

        The messages are written as files of a scratch Maildir and imported in
        one doveadm run: 10,000 small messages take a few seconds, where one
        APPEND each would take a round trip each.
        """
        staging = Path(tempfile.mkdtemp(dir=self.directory / "staging"))
        try:
            await asyncio.to_thread(self._stage, staging, raws, folder)
            await self.doveadm(
                "import",
                "-u",
                user,
                f"maildir:{staging}:LAYOUT=fs:UTF-8",
                "",
                "mailbox",
                folder,
                "all",
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    def _stage(self, staging: Path, raws: Sequence[bytes], folder: str) -> None:
        # In a LAYOUT=fs Maildir, INBOX is the root and folder "a/b" is a/b/.
        maildir = staging if folder.upper() == "INBOX" else staging / folder
        cur = maildir / "cur"
        cur.mkdir(parents=True)
        for sub in ("new", "tmp"):
            (maildir / sub).mkdir()
        for number, raw in enumerate(raws):
            # Dovecot numbers new Maildir files in file name order.
            (cur / f"{number:09d}.commhub.staging:2,").write_bytes(raw)
        if self._root:
            for path in [staging, *staging.rglob("*")]:
                os.chown(path, self._mail_uid, self._mail_gid)

    async def uids(self, user: str, folder: str = "INBOX") -> list[int]:
        """The UIDs in the folder, ascending."""
        output = await self.doveadm("search", "-u", user, "mailbox", folder, "all")
        return sorted(int(line.split()[-1]) for line in output.splitlines() if line.strip())

    async def flags(self, user: str, uid: int, folder: str = "INBOX") -> set[str]:
        """The message's stored flags and keywords; \\Recent is per session, so it is left out."""
        output = await self.doveadm(
            "-f", "flow", "fetch", "-u", user, "flags", "mailbox", folder, "uid", str(uid)
        )
        if not output.startswith("flags="):
            raise DovecotError(f"no message with UID {uid} in {folder!r} of {user!r}")
        return set(output.removeprefix("flags=").split()) - {"\\Recent"}

    async def folders(self, user: str) -> set[str]:
        """The user's folder names as doveadm spells them (UTF-8, '/' between levels)."""
        output = await self.doveadm("mailbox", "list", "-u", user)
        return {line for line in output.splitlines() if line}

    async def create_folder(self, user: str, name: str) -> None:
        await self.doveadm("mailbox", "create", "-u", user, name)

    async def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        # Tab format: a header line, then "<mailbox>\t<uidvalidity>".
        output = await self.doveadm(
            "-f", "tab", "mailbox", "status", "-u", user, "uidvalidity", folder
        )
        value = output.strip().splitlines()[-1].rsplit("\t", 1)[-1]
        if not value.isdigit():
            raise DovecotError(f"no UIDVALIDITY for {folder!r} of {user!r} in {output!r}")
        return int(value)

    async def change_uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """Give the folder a new UIDVALIDITY, keeping its messages; return the new value.

        As after a server restore: every UID a client remembers for the folder
        is void (RFC 3501 §2.3.1.1). Connections that SELECT it afterwards see
        the new value.
        """
        old = await self.uidvalidity(user, folder)
        new = old + 1 if old < 2**32 - 1 else 1
        await self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(new), folder)
        if await self.uidvalidity(user, folder) != new:
            raise DovecotError(f"UIDVALIDITY of {folder!r} of {user!r} did not change")
        return new

    async def expunge_all(self, user: str, folder: str = "INBOX") -> None:
        await self.doveadm("expunge", "-u", user, "mailbox", folder, "all")

    async def kick(self, user: str) -> None:
        """Drop every IMAP connection of the user at once, as a server restart would.

        ``doveadm kick`` SIGTERMs the user's imap processes; each sends
        ``* BYE Server shutting down.`` and closes, even in the middle of IDLE.
        Returns once Dovecot counts none of the user's connections left.
        """
        await self.doveadm("kick", user, allow_status=(_NO_USERS_KICKED,))
        deadline = asyncio.get_running_loop().time() + 5
        while await self._connected(user):
            if asyncio.get_running_loop().time() > deadline:
                raise DovecotError(f"{user!r} still connected 5 s after doveadm kick")
            await asyncio.sleep(0.02)

    async def _connected(self, user: str) -> bool:
        output = await self.doveadm("who", user)
        return any(line.split()[:1] == [user] for line in output.splitlines()[1:])

    # -- plumbing ----------------------------------------------------------------

    @contextlib.contextmanager
    def imap(self, user: str) -> Iterator[IMAP4]:
        """A blocking imaplib client logged in as the user; for threads and test setup."""
        if user not in self._passwords:
            raise DovecotError(f"no user {user!r} on this server: add_user() first")
        client = IMAP4(HOST, self.port, timeout=10)
        try:
            client.login(user, self._passwords[user])
            yield client
        finally:
            with contextlib.suppress(OSError, IMAP4.error):
                client.logout()

    async def doveadm(self, *args: str, allow_status: Sequence[int] = ()) -> str:
        """Run doveadm against this instance and return its stdout; DovecotError on failure."""
        process = await asyncio.create_subprocess_exec(
            self._doveadm,
            "-c",
            str(self.directory / "dovecot.conf"),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await process.communicate()
        if process.returncode != 0 and process.returncode not in allow_status:
            raise DovecotError(
                f"doveadm {' '.join(args)} exited {process.returncode}: "
                f"{stderr.decode(errors='replace').strip()}"
            )
        return stdout.decode(errors="replace")

    def log_text(self) -> str:
        """Dovecot's log and anything it printed itself, for failure messages."""
        if self._directory is None:
            return ""
        parts = []
        for name in ("stderr.log", "dovecot.log"):
            path = self._directory / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)
