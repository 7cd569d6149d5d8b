"""A loopback SMSC for the tests: real SMPP 3.4 PDUs over TCP on 127.0.0.1.

Written with ``struct`` straight from the specification, apart from the
adapter's own codec, so a mistake there cannot hide behind the same mistake
here. It binds transceivers (checking system_id and password), answers
enquire_link and unbind, takes submit_sm (recording each one decoded: UDH,
data_coding, text) with its own message ids, and sends a delivery receipt
after ``receipt_delay_s``. Faults are injected here, never by patching the
adapter: throttling, refusals, unanswered submits, a dropped connection,
inbound messages (whole or in parts), a malformed PDU, its own enquire_link.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

HEADER = struct.Struct("!IIII")
GENERIC_NACK = 0x80000000
BIND_TRANSCEIVER = 0x00000009
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
ENQUIRE_LINK = 0x00000015
RESP = 0x80000000

ROK = 0x00
RINVCMDID = 0x03
RINVPASWD = 0x0E
RTHROTTLED = 0x58
RINVDSTADR = 0x0B

ReceiptIds = Literal["same", "decimal", "padded"]


@dataclass(frozen=True)
class Submitted:
    """One submit_sm as the SMSC read it."""

    message_id: str
    source: tuple[int, int, str]
    destination: tuple[int, int, str]
    esm_class: int
    data_coding: int
    registered_delivery: int
    udh: bytes
    concatenation: tuple[int, int, int] | None
    """(reference, total, sequence) from IE 00 of the UDH."""
    text: str


@dataclass
class _Session:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    bound: bool = False


def _c_string(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(b"\0", at)
    return data[at:end].decode("ascii"), end + 1


def _c(value: str) -> bytes:
    return value.encode("ascii") + b"\0"


def _text(data: bytes, data_coding: int) -> str:
    if data_coding == 8:
        return data.decode("utf-16-be")
    return data.decode("gsm03.38")


def _encode(text: str) -> tuple[int, bytes]:
    try:
        return 0, text.encode("gsm03.38")
    except UnicodeEncodeError:
        return 8, text.encode("utf-16-be")


@dataclass
class Smsc:
    """The SMSC; ``await start()``, then point the adapter at ``port``."""

    system_id: str = "commhub"
    password: str = "s3cr3t"
    receipt_delay_s: float | None = 0.05
    hex_ids: bool = False
    receipt_ids: ReceiptIds = "same"
    receipt_tlvs: bool = False
    outcomes: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Receipt stat and err by destination digits; ``DELIVRD``/``000`` for the others."""
    throttle: int = 0
    silent: int = 0
    refuse: dict[str, int] = field(default_factory=dict)
    submit_delay_s: float = 0.0

    binds: list[tuple[str, str]] = field(default_factory=list)
    submits: list[Submitted] = field(default_factory=list)
    enquire_links: int = 0
    unbinds: int = 0
    nacks: list[tuple[int, int]] = field(default_factory=list)
    answers: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Responses the ESME sent to our requests: sequence -> (command_id, status)."""
    in_flight: int = 0
    max_in_flight: int = 0
    port: int = 0

    def __post_init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._sessions: list[_Session] = []
        self._ids = itertools.count(0x2A0F00)
        self._sequences = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.drop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # --- what the tests look at and do ---------------------------------------------------

    @property
    def bound(self) -> int:
        return sum(1 for session in self._sessions if session.bound)

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        async def poll() -> None:
            while not condition():
                await asyncio.sleep(0.01)

        await asyncio.wait_for(poll(), timeout)

    async def answer_to(self, sequence: int, timeout: float = 5.0) -> int:
        """The status the ESME answered our request ``sequence`` with."""
        await self.wait_until(lambda: sequence in self.answers, timeout)
        return self.answers[sequence][1]

    def drop(self) -> None:
        """Close every connection at once, as a crashed SMSC or a cut network does."""
        for session in self._sessions:
            session.writer.transport.abort()
        self._sessions.clear()

    def send_mo(
        self,
        text: str,
        *,
        sender: str = "79161234567",
        recipient: str = "79001234567",
        parts: int = 1,
        reference: int = 0x42,
        wide_reference: bool = False,
        only: tuple[int, ...] = (),
    ) -> list[int]:
        """Deliver a message someone sent, cut into ``parts`` segments; their sequences.

        ``only`` delivers just those segments (1-based), as an SMSC does when
        it delivers again the one that got an error.
        """
        data_coding, _ = _encode(text)
        size = -(-len(text) // parts)
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        sequences = []
        for number, chunk in enumerate(chunks, 1):
            if only and number not in only:
                continue
            payload = chunk.encode("gsm03.38" if data_coding == 0 else "utf-16-be")
            esm_class = 0
            if parts > 1:
                esm_class = 0x40
                if wide_reference:
                    payload = (
                        bytes((6, 8, 4)) + reference.to_bytes(2, "big") + bytes((parts, number))
                    ) + payload
                else:
                    payload = bytes((5, 0, 3, reference, parts, number)) + payload
            sequences.append(
                self.deliver(
                    sender, recipient, payload, esm_class=esm_class, data_coding=data_coding
                )
            )
        return sequences

    def deliver(
        self,
        source: str,
        destination: str,
        short_message: bytes,
        *,
        esm_class: int = 0,
        data_coding: int = 0,
        tlvs: bytes = b"",
    ) -> int:
        body = (
            _c("")
            + bytes((1, 1))
            + _c(source)
            + bytes((1, 1))
            + _c(destination)
            + bytes((esm_class, 0, 0))
            + _c("")
            + _c("")
            + bytes((0, 0, data_coding, 0, len(short_message)))
            + short_message
            + tlvs
        )
        return self.request(DELIVER_SM, body)

    def send_malformed(self) -> int:
        """A deliver_sm whose source_addr never ends (no NUL): the body lies about its fields."""
        return self.request(DELIVER_SM, _c("") + bytes((1, 1)) + b"7916123")

    def enquire_link(self) -> int:
        return self.request(ENQUIRE_LINK, b"")

    def unbind(self) -> int:
        """Ask the ESME to unbind, as an SMSC does before maintenance."""
        return self.request(UNBIND, b"")

    def request(self, command_id: int, body: bytes) -> int:
        bound = [session for session in self._sessions if session.bound]
        if not bound:
            raise ConnectionError("no ESME is bound")
        session = bound[-1]
        sequence = next(self._sequences)
        self._write(session, command_id, ROK, sequence, body)
        return sequence

    # --- the protocol ---------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(reader, writer)
        self._sessions.append(session)
        try:
            while True:
                header = await reader.readexactly(16)
                length, command_id, status, sequence = HEADER.unpack(header)
                body = await reader.readexactly(length - 16)
                if not self._handle(session, command_id, status, sequence, body):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            session.bound = False
            if session in self._sessions:
                self._sessions.remove(session)
            writer.close()

    def _handle(
        self, session: _Session, command_id: int, status: int, sequence: int, body: bytes
    ) -> bool:
        if command_id & RESP:
            if command_id == GENERIC_NACK:
                self.nacks.append((sequence, status))
            self.answers[sequence] = (command_id, status)
        elif command_id == BIND_TRANSCEIVER:
            system_id, at = _c_string(body, 0)
            password, _ = _c_string(body, at)
            self.binds.append((system_id, password))
            if (system_id, password) != (self.system_id, self.password):
                self._write(session, command_id | RESP, RINVPASWD, sequence, b"")
            else:
                session.bound = True
                self._write(session, command_id | RESP, ROK, sequence, _c("loopsmsc"))
        elif command_id == ENQUIRE_LINK:
            self.enquire_links += 1
            self._write(session, command_id | RESP, ROK, sequence, b"")
        elif command_id == UNBIND:
            self.unbinds += 1
            self._write(session, command_id | RESP, ROK, sequence, b"")
            return False
        elif command_id == SUBMIT_SM and session.bound:
            self._spawn(self._submitted(session, sequence, body))
        else:
            self._write(session, GENERIC_NACK, RINVCMDID, sequence, b"")
        return True

    async def _submitted(self, session: _Session, sequence: int, body: bytes) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.submit_delay_s)
            submit = self._read_submit(body)
        finally:
            self.in_flight -= 1
        if self.silent:
            self.silent -= 1
            return
        if self.throttle:
            self.throttle -= 1
            self._write(session, SUBMIT_SM | RESP, RTHROTTLED, sequence, b"")
            return
        if submit.destination[2] in self.refuse:
            self._write(
                session, SUBMIT_SM | RESP, self.refuse[submit.destination[2]], sequence, b""
            )
            return
        self.submits.append(submit)
        self._write(session, SUBMIT_SM | RESP, ROK, sequence, _c(submit.message_id))
        if submit.registered_delivery & 1 and self.receipt_delay_s is not None:
            self._spawn(self._receipt(submit))

    def _read_submit(self, body: bytes) -> Submitted:
        _, at = _c_string(body, 0)
        source_ton, source_npi = body[at], body[at + 1]
        source, at = _c_string(body, at + 2)
        dest_ton, dest_npi = body[at], body[at + 1]
        destination, at = _c_string(body, at + 2)
        esm_class = body[at]
        _, at = _c_string(body, at + 3)
        _, at = _c_string(body, at)
        registered_delivery = body[at]
        data_coding, sm_length = body[at + 2], body[at + 4]
        short_message = body[at + 5 : at + 5 + sm_length]
        udh, concatenation = b"", None
        if esm_class & 0x40:
            udh, short_message = (
                short_message[: short_message[0] + 1],
                short_message[short_message[0] + 1 :],
            )
            if udh[1:3] == b"\x00\x03":
                concatenation = (udh[3], udh[4], udh[5])
        number = next(self._ids)
        return Submitted(
            message_id=format(number, "X") if self.hex_ids else str(number),
            source=(source_ton, source_npi, source),
            destination=(dest_ton, dest_npi, destination),
            esm_class=esm_class,
            data_coding=data_coding,
            registered_delivery=registered_delivery,
            udh=udh,
            concatenation=concatenation,
            text=_text(short_message, data_coding),
        )

    async def _receipt(self, submit: Submitted) -> None:
        assert self.receipt_delay_s is not None
        await asyncio.sleep(self.receipt_delay_s)
        stat, err = self.outcomes.get(submit.destination[2], ("DELIVRD", "000"))
        number = int(submit.message_id, 16 if self.hex_ids else 10)
        shown = {
            "same": submit.message_id,
            "decimal": str(number),
            "padded": submit.message_id.lower().rjust(10, "0"),
        }[self.receipt_ids]
        text = (
            f"id:{shown} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
            f"submit date:2611241200 done date:2611241201 stat:{stat} err:{err} "
            f"text:{submit.text[:20]}"
        )
        tlvs = b""
        if self.receipt_tlvs:
            states = {"DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "REJECTD": 8}
            receipted = _c(submit.message_id)
            tlvs = struct.pack("!HH", 0x001E, len(receipted)) + receipted
            tlvs += struct.pack("!HHB", 0x0427, 1, states.get(stat, 7))
        with contextlib.suppress(ConnectionError):
            self.deliver(
                submit.destination[2],
                submit.source[2],
                text.encode("ascii"),
                esm_class=0x04,
                tlvs=tlvs,
            )

    def _write(
        self, session: _Session, command_id: int, status: int, sequence: int, body: bytes
    ) -> None:
        if not session.writer.is_closing():
            session.writer.write(HEADER.pack(16 + len(body), command_id, status, sequence) + body)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
