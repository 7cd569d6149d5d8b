"""A real, throwaway Kannel on loopback: bearerbox, smsbox and the fakesmsc simulator.

The Kannel adapter must cope with what Kannel itself does — its sendsms
answers, the delivery reports bearerbox makes, the way smsbox fills in a
``dlr-url`` or an ``sms-service`` URL with its escape codes — so its tests run
against the Debian packages ``kannel`` (bearerbox, smsbox) and
``kannel-extras`` (``/usr/lib/kannel/test/fakesmsc``), not a look-alike.

Each :class:`KannelServer` lives in one temp directory: its own
``kannel.conf`` (nothing from /etc/kannel), logs and nothing else. Every port
is on 127.0.0.1: bearerbox's admin and smsbox ports, the fake SMSC's port and
smsbox's sendsms port. The chain is the one an operator runs, with the mobile
network replaced by fakesmsc::

    test ──sendsms──► smsbox ──► bearerbox ──"smsc = fake"──► fakesmsc (the "SMSC")
    hub ◄──dlr-url / sms-service (post-url)── smsbox ◄── bearerbox ◄── fakesmsc (MO)

What fakesmsc gives: it prints each message Kannel hands the SMSC (``Got
message N: <sender receiver type data>``) and sends every line written to
its stdin as a message from a phone. The fake SMSC type reports delivery
itself (Kannel 1.4.5, gw/smsc/smsc_fake.c): once a message is written to
fakesmsc, bearerbox emits the SMSC-level report 8 ("ACK/") and then a final
1 (delivered) when the dlr-mask asks for them. A message no SMSC may take
(here: any number under ``denied_prefix``) is refused at sendsms with
``403 Not routable. Do not try again.`` and reported 16 ("NACK/no SMSC").

Run as root, all three programs run as ``nobody``; otherwise as the caller.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final
from urllib.parse import quote, unquote_to_bytes

HOST: Final = "127.0.0.1"
FAKESMSC_PATHS: Final = ("/usr/lib/kannel/test/fakesmsc",)
SMSC_ID: Final = "fake"
DENIED_PREFIX: Final = "+999"
"""Numbers under this prefix are routed nowhere: Kannel's own "not routable" refusal."""

_GOT_MESSAGE: Final = re.compile(r"Got message \d+: <(.*)>$")
_FAKESMSC_LINE_MAX: Final = 255
"""fakesmsc reads its stdin with fgets into a 256-byte buffer (test/fakesmsc.c IN_BUFSIZE)."""
_PLAIN: Final = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


class KannelError(RuntimeError):
    """Kannel would not start, or fakesmsc did not see what was expected; says why."""


def kannel_binaries() -> tuple[str, str, str] | None:
    """bearerbox, smsbox and fakesmsc, or None when Kannel (or kannel-extras) is missing."""
    found: list[str] = []
    for name in ("bearerbox", "smsbox"):
        path = shutil.which(name) or f"/usr/sbin/{name}"
        if not os.access(path, os.X_OK):
            return None
        found.append(path)
    fake = shutil.which("fakesmsc") or next(
        (path for path in FAKESMSC_PATHS if os.access(path, os.X_OK)), None
    )
    if fake is None:
        return None
    return found[0], found[1], fake


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class SmscMessage:
    """A message (or one part of a long one) as it reached the fake SMSC."""

    sender: str
    receiver: str
    kind: str
    """How Kannel wrote it: ``text``, ``data`` or ``ucs-2`` (url-encoded), or ``udh``."""
    payload: bytes
    """The message's octets: UTF-8 for GSM text (Kannel converts at a real SMSC), UTF-16BE
    for UCS-2; for a ``udh`` part, the bytes after its header."""
    udh: bytes = b""

    @property
    def text(self) -> str:
        """The text of a whole message (a ``udh`` part's payload is only a piece of one)."""
        codec = "utf-16-be" if self.kind == "ucs-2" else "utf-8"
        return self.payload.decode(codec, errors="replace")


def _read_smsc_line(line: str) -> SmscMessage:
    """One of Kannel's lines to fakesmsc: ``sender receiver kind [udh kind] data``.

    Kannel 1.4.5 (gw/smsc/smsc_fake.c ``sms_to_client``) writes plain ASCII
    as ``text``, UCS-2 as ``ucs-2`` and other octets as ``data``, the last two
    url-encoded; a part of a long message as ``udh <udh> data <octets>``.
    """
    sender, receiver, kind, rest = (line.split(" ", 3) + ["", "", "", ""])[:4]
    udh = b""
    if kind == "udh":
        header, _inner, rest = (rest.split(" ", 2) + ["", "", ""])[:3]
        udh = unquote_to_bytes(header)
    payload = rest.encode() if kind == "text" else unquote_to_bytes(rest.replace("+", " "))
    return SmscMessage(sender=sender, receiver=receiver, kind=kind, payload=payload, udh=udh)


class KannelServer:
    """One Kannel (bearerbox, smsbox) and fakesmsc as its SMSC; ``start()``/``stop()`` or ``with``.

    ``mo_url`` is the ``post-url`` of the catch-all ``sms-service``: where
    smsbox forwards each message a phone sends, with Kannel's escape codes
    (``%p``, ``%I``…) filled in. ``http_retries`` and ``http_retry_delay_s``
    are smsbox's ``http-request-retry`` and ``http-queue-delay``: how often and
    how soon a failed MO or DLR request is tried again.
    """

    host: str = HOST

    def __init__(
        self,
        *,
        mo_url: str = "",
        username: str = "hub",
        password: str = "kannel-password",
        http_retries: int = 0,
        http_retry_delay_s: int = 1,
        start_timeout: float = 10.0,
    ) -> None:
        binaries = kannel_binaries()
        if binaries is None:
            raise KannelError(
                "Kannel is not installed: bearerbox, smsbox (kannel) and fakesmsc (kannel-extras)"
            )
        self._bearerbox, self._smsbox, self._fakesmsc = binaries
        if any(c in mo_url for c in '"\r\n'):
            raise ValueError("mo_url may not hold quotes or line breaks")
        self.mo_url = mo_url
        self.username = username
        self.password = password
        self.http_retries = http_retries
        self.http_retry_delay_s = http_retry_delay_s
        self._start_timeout = start_timeout
        self.admin_port = self.smsbox_port = self.smsc_port = self.sendsms_port = 0
        self._directory: Path | None = None
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._fakesmsc_stdin: IO[bytes] | None = None
        self._phone_messages = 0
        self._root = os.geteuid() == 0
        self._nobody = pwd.getpwnam("nobody") if self._root else None

    # -- lifecycle ---------------------------------------------------------------

    @property
    def directory(self) -> Path:
        if self._directory is None:
            raise KannelError("Kannel is not started")
        return self._directory

    @property
    def sendsms_url(self) -> str:
        return f"http://{HOST}:{self.sendsms_port}/cgi-bin/sendsms"

    @property
    def running(self) -> bool:
        return any(process.poll() is None for process in self._processes.values())

    def start(self) -> None:
        """Start bearerbox, smsbox and fakesmsc; return once both are linked to bearerbox.

        Ports are found by binding port 0 and released before Kannel binds
        them; if another process takes one in between, start again on new ones.
        """
        self._directory = Path(tempfile.mkdtemp(prefix="commhub-kannel-"))
        if self._nobody is not None:
            os.chown(self._directory, self._nobody.pw_uid, self._nobody.pw_gid)
        try:
            for _attempt in range(3):
                self.admin_port, self.smsbox_port, self.smsc_port, self.sendsms_port = (
                    _free_port() for _ in range(4)
                )
                for stale in self._directory.iterdir():  # a failed attempt's logs
                    stale.unlink()
                (self._directory / "kannel.conf").write_text(self._config())
                if self._launch():
                    return
                self._terminate()
            raise KannelError(f"Kannel could not bind free ports:\n{self.log_text()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop fakesmsc, smsbox and bearerbox, reap them, and delete the temp directory."""
        self._terminate()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> KannelServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _terminate(self) -> None:
        # fakesmsc stops on SIGINT; smsbox and bearerbox shut down on SIGTERM.
        # bearerbox waits for its queues to drain, which a test never needs.
        stdin, self._fakesmsc_stdin = self._fakesmsc_stdin, None
        for name in ("fakesmsc", "smsbox", "bearerbox"):
            process = self._processes.pop(name, None)
            if process is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT if name == "fakesmsc" else signal.SIGTERM)
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if stdin is not None:
            with contextlib.suppress(OSError):
                stdin.close()

    def _spawn(self, name: str, argv: list[str], *, stdin: int = subprocess.DEVNULL) -> None:
        nobody = self._nobody
        with open(self.directory / f"{name}.out", "wb") as output:
            self._processes[name] = subprocess.Popen(
                argv,
                stdin=stdin,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                # Its own session, so a Ctrl-C meant for pytest does not reach it
                # first. None of the three forks: stopping each by its id ends all.
                start_new_session=True,
                # Run as root, drop to nobody: Kannel needs no privilege here.
                user=None if nobody is None else nobody.pw_uid,
                group=None if nobody is None else nobody.pw_gid,
                extra_groups=None if nobody is None else [],
            )

    def _launch(self) -> bool:
        """Start the three in order; False if a port was taken meanwhile.

        Readiness is read from bearerbox's log, not by probing ports: bearerbox
        takes any connection to the fake SMSC's port for fakesmsc, and any to
        its smsbox port for a box.
        """
        config = str(self.directory / "kannel.conf")
        self._spawn("bearerbox", [self._bearerbox, "-v", "1", config])
        # All its listeners (the fake SMSC's too) are open before this line.
        if not self._wait("bearerbox", lambda: self._logged("MAIN: Start-up done")):
            return False
        self._spawn("smsbox", [self._smsbox, "-v", "1", config])
        # fakesmsc logs each message it is handed at debug level (-v 0); -i 0: no
        # pause between the lines it sends.
        self._spawn(
            "fakesmsc",
            [self._fakesmsc, "-H", HOST, "-r", str(self.smsc_port), "-i", "0", "-v", "0"],
            stdin=subprocess.PIPE,
        )
        self._fakesmsc_stdin = self._processes["fakesmsc"].stdin
        self._phone_messages = 0
        # smsbox answers sendsms before bearerbox has taken its connection (about
        # a second later); a message sent meanwhile would wait for it.
        if not self._wait("smsbox", lambda: self._logged("Client connected from <")):
            return False
        return self._wait("fakesmsc", lambda: self._logged("Fakesmsc client connected"))

    def _logged(self, text: str) -> bool:
        return text in self._read("bearerbox.log")

    def _wait(self, name: str, ready: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            for process_name, process in self._processes.items():
                if process.poll() is not None:
                    if "Address already in use" in self.log_text():
                        return False
                    raise KannelError(
                        f"{process_name} exited ({process.returncode}) at start:\n{self.log_text()}"
                    )
            if ready():
                return True
            time.sleep(0.02)
        raise KannelError(f"{name} not ready within {self._start_timeout} s:\n{self.log_text()}")

    def _config(self) -> str:
        directory = self.directory
        mo = (
            f'post-url = "{self.mo_url}"'
            if self.mo_url
            else 'text = ""'  # no hub: swallow MO silently
        )
        return f"""\
# Written by tests/kannel.py for one test run; deleted when Kannel stops.
group = core
admin-port = {self.admin_port}
admin-interface = {HOST}
admin-password = "admin-{os.getpid()}"
admin-allow-ip = {HOST}
smsbox-port = {self.smsbox_port}
smsbox-interface = {HOST}
box-allow-ip = {HOST}
log-file = "{directory / "bearerbox.log"}"
log-level = 1
access-log = "{directory / "access.log"}"
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = {SMSC_ID}
port = {self.smsc_port}
our-host = {HOST}
connect-allow-ip = {HOST}
denied-prefix = "{DENIED_PREFIX}"

group = smsbox
bearerbox-host = {HOST}
bearerbox-port = {self.smsbox_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = {HOST}
log-file = "{directory / "smsbox.log"}"
log-level = 1
access-log = "{directory / "smsbox-access.log"}"
http-request-retry = {self.http_retries}
http-queue-delay = {self.http_retry_delay_s}

group = sendsms-user
username = "{self.username}"
password = "{self.password}"
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
max-messages = 0
{mo}
"""

    # -- the SMSC's side ---------------------------------------------------------

    def send_from_phone(self, sender: str, receiver: str, text: str) -> None:
        """A phone sends ``text`` to ``receiver``: one MO line on fakesmsc's stdin.

        Plain ASCII goes as ``text``; anything else as ``ucs2`` (fakesmsc's
        url-encoded UTF-16BE, Kannel 1.4.5), as a handset sends Cyrillic.
        """
        if not all(part and " " not in part for part in (sender, receiver)):
            raise ValueError("sender and receiver must be non-empty and without spaces")
        if _PLAIN.fullmatch(text):
            line = f"{sender} {receiver} text {text}"
        else:
            line = f"{sender} {receiver} ucs2 {quote(text.encode('utf-16-be'), safe='')}"
        if len(line.encode()) >= _FAKESMSC_LINE_MAX:
            raise ValueError(f"fakesmsc takes lines of {_FAKESMSC_LINE_MAX - 1} bytes at most")
        self._fakesmsc_write(line + "\n")
        self._phone_messages += 1
        # fakesmsc waits for stdin with select() but reads it with fgets(): a line
        # that arrives together with another stays in stdio's buffer, unseen by
        # select, until more input comes. Each empty line lets one more through.
        sent = f"fakesmsc: sent message {self._phone_messages}\n"
        deadline = time.monotonic() + self._start_timeout
        while sent not in self._read("fakesmsc.out"):
            if time.monotonic() > deadline:
                raise KannelError(f"fakesmsc did not send {line!r}:\n{self.log_text()}")
            self._fakesmsc_write("\n")
            time.sleep(0.01)

    def _fakesmsc_write(self, data: str) -> None:
        stdin = self._fakesmsc_stdin
        if stdin is None:
            raise KannelError("fakesmsc is not running")
        stdin.write(data.encode())
        stdin.flush()

    def smsc_received(self) -> list[SmscMessage]:
        """Every message Kannel has handed the fake SMSC so far, in order.

        fakesmsc looks at its socket between reads of stdin (a 1 s select);
        an empty line makes it look now, so nothing waits on that second.
        """
        if self._fakesmsc_stdin is not None:
            with contextlib.suppress(OSError):
                self._fakesmsc_write("\n")
        found = []
        for line in self._read("fakesmsc.out").splitlines():
            matched = _GOT_MESSAGE.search(line)
            if matched:
                found.append(_read_smsc_line(matched.group(1)))
        return found

    # -- plumbing ----------------------------------------------------------------

    def _read(self, name: str) -> str:
        if self._directory is None:
            return ""
        path = self._directory / name
        return path.read_text(errors="replace") if path.exists() else ""

    def log_text(self) -> str:
        """What each program printed and logged, for failure messages."""
        parts = []
        for name in ("bearerbox.out", "bearerbox.log", "smsbox.out", "smsbox.log", "fakesmsc.out"):
            text = self._read(name)
            if text:
                parts.append(f"--- {name}\n{text}")
        return "\n".join(parts)
