"""SMPP 3.4 on the wire: framing, the PDUs an ESME exchanges, their fields and TLVs.

Every PDU is a 16-octet header (command_length, command_id,
command_status, sequence_number; SMPP 3.4 §3.2) and a body of C-octet
strings, integers and TLVs (§5.3). Written on ``struct`` rather than on
aiosmpplib's message classes: those turn short_message into text as they
decode it (the UDH and the raw octets are gone) and raise on any TON, NPI or
status their enums do not list, so one odd PDU from an SMSC would cost the
link. Only aiosmpplib's table of command statuses is used, for their names.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
from aiosmpplib import SmppCommandStatus

HEADER: Final = struct.Struct("!IIII")
HEADER_BYTES: Final = HEADER.size
MAX_PDU_BYTES: Final = 70_000
"""A message_payload TLV holds up to 64 KiB; anything longer means a desynchronised stream."""

RESPONSE: Final = 0x80000000
GENERIC_NACK: Final = 0x80000000
BIND_TRANSCEIVER: Final = 0x00000009
BIND_TRANSCEIVER_RESP: Final = 0x80000009
SUBMIT_SM: Final = 0x00000004
SUBMIT_SM_RESP: Final = 0x80000004
DELIVER_SM: Final = 0x00000005
DELIVER_SM_RESP: Final = 0x80000005
UNBIND: Final = 0x00000006
UNBIND_RESP: Final = 0x80000006
ENQUIRE_LINK: Final = 0x00000015
ENQUIRE_LINK_RESP: Final = 0x80000015

# Command statuses (§5.1.3) the adapter acts on.
ESME_ROK: Final = 0x00
ESME_RINVMSGLEN: Final = 0x01
ESME_RINVCMDLEN: Final = 0x02
ESME_RINVCMDID: Final = 0x03
ESME_RINVBNDSTS: Final = 0x04
ESME_RSYSERR: Final = 0x08
ESME_RBINDFAIL: Final = 0x0D
ESME_RINVPASWD: Final = 0x0E
ESME_RINVSYSID: Final = 0x0F
ESME_RMSGQFUL: Final = 0x14
ESME_RTHROTTLED: Final = 0x58
ESME_RX_T_APPN: Final = 0x64
ESME_RUNKNOWNERR: Final = 0xFF

INTERFACE_VERSION: Final = 0x34

# esm_class (§5.2.12)
UDHI: Final = 0x40
MESSAGE_TYPE_MASK: Final = 0x3C
SMSC_DELIVERY_RECEIPT: Final = 0x04
INTERMEDIATE_NOTIFICATION: Final = 0x20

# TLV tags (§5.3.2)
RECEIPTED_MESSAGE_ID: Final = 0x001E
SAR_MSG_REF_NUM: Final = 0x020C
SAR_TOTAL_SEGMENTS: Final = 0x020E
SAR_SEGMENT_SEQNUM: Final = 0x020F
NETWORK_ERROR_CODE: Final = 0x0423
MESSAGE_PAYLOAD: Final = 0x0424
MESSAGE_STATE: Final = 0x0427

# data_coding (§5.2.19)
DATA_CODING_DEFAULT: Final = 0x00
DATA_CODING_UCS2: Final = 0x08
_CHARSETS: Final[Mapping[int, str]] = {
    0x00: "gsm03.38",
    0x01: "ascii",
    0x03: "latin-1",
    0x06: "iso8859-5",
    0x07: "iso8859-8",
    0x08: "utf-16-be",
}


class PduError(ValueError):
    """A PDU whose body does not hold what its command says; answered with generic_nack."""

    def __init__(self, message: str, *, status: int = ESME_RINVCMDLEN) -> None:
        super().__init__(message)
        self.status = status


class FramingError(PduError):
    """A command_length no PDU can have: the stream cannot be read any further."""


def status_text(status: int) -> str:
    """``ESME_RINVDSTADR (Invalid Dest Addr)``: the spec's name and meaning of a command status."""
    try:
        known = SmppCommandStatus(status)
    except ValueError:
        return f"status 0x{status:08X}"
    return f"{known.name} ({known.description})"


@dataclass(frozen=True, slots=True)
class Pdu:
    command_id: int
    status: int
    sequence: int
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE)

    def encode(self) -> bytes:
        return (
            HEADER.pack(HEADER_BYTES + len(self.body), self.command_id, self.status, self.sequence)
            + self.body
        )


async def read_pdu(reader: asyncio.StreamReader) -> Pdu:
    """The next PDU off the stream; IncompleteReadError at its end, FramingError on garbage."""
    header = await reader.readexactly(HEADER_BYTES)
    length, command_id, status, sequence = HEADER.unpack(header)
    if not HEADER_BYTES <= length <= MAX_PDU_BYTES:
        raise FramingError(f"command_length {length} (command 0x{command_id:08X})")
    body = await reader.readexactly(length - HEADER_BYTES) if length > HEADER_BYTES else b""
    return Pdu(command_id, status, sequence, body)


def generic_nack(sequence: int, status: int) -> Pdu:
    return Pdu(GENERIC_NACK, status, sequence)


def c_string(value: str, *, limit: int) -> bytes:
    """A C-octet string of at most ``limit`` octets before its NUL (§3.1)."""
    octets = value.encode("ascii")
    if len(octets) > limit or b"\0" in octets:
        raise ValueError(f"{value!r} does not fit a {limit}-octet SMPP field")
    return octets + b"\0"


class _Cursor:
    """Reads a PDU body field by field; running off its end is a :class:`PduError`."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.at = 0

    def c_string(self, name: str, limit: int) -> str:
        end = self.body.find(b"\0", self.at, self.at + limit + 1)
        if end < 0:
            raise PduError(f"{name} has no NUL within {limit + 1} octets")
        value = self.body[self.at : end].decode("latin-1")
        self.at = end + 1
        return value

    def octet(self, name: str) -> int:
        if self.at >= len(self.body):
            raise PduError(f"the body ends before {name}")
        self.at += 1
        return self.body[self.at - 1]

    def octets(self, name: str, count: int) -> bytes:
        if self.at + count > len(self.body):
            raise PduError(f"{name} runs {self.at + count - len(self.body)} octets past the body")
        self.at += count
        return self.body[self.at - count : self.at]

    def tlvs(self) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        while self.at < len(self.body):
            if self.at + 4 > len(self.body):
                raise PduError("a truncated TLV header", status=0xC0)  # ESME_RINVOPTPARSTREAM
            tag, length = struct.unpack_from("!HH", self.body, self.at)
            self.at += 4
            found[tag] = self.octets(f"TLV 0x{tag:04X}", length)
        return found


def bind_transceiver_body(
    *,
    system_id: str,
    password: str,
    system_type: str,
    address_range: str,
    addr_ton: int = 0,
    addr_npi: int = 0,
) -> bytes:
    """bind_transceiver (§4.1.5); the password is in it, so this body is never logged."""
    return (
        c_string(system_id, limit=15)
        + c_string(password, limit=64)  # §4.1 says 8; some SMSCs hand out longer ones
        + c_string(system_type, limit=12)
        + bytes((INTERFACE_VERSION, addr_ton, addr_npi))
        + c_string(address_range, limit=40)
    )


def leading_c_string(body: bytes, *, limit: int = 65) -> str:
    """The system_id of a bind_resp or the message_id of a submit_sm_resp (empty on errors)."""
    if not body:
        return ""
    return _Cursor(body).c_string("the first field", limit).strip()


@dataclass(frozen=True, slots=True)
class Address:
    ton: int
    npi: int
    value: str


@dataclass(frozen=True, slots=True)
class ShortMessage:
    """The body of a submit_sm or deliver_sm (§4.4.1, §4.6.1), short_message as octets."""

    source: Address
    destination: Address
    esm_class: int = 0
    data_coding: int = DATA_CODING_DEFAULT
    short_message: bytes = b""
    registered_delivery: int = 0
    service_type: str = ""
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    replace_if_present: int = 0
    sm_default_msg_id: int = 0
    tlvs: Mapping[int, bytes] = field(default_factory=dict)

    @property
    def user_data(self) -> bytes:
        """short_message, or the message_payload TLV where the SMSC put the text there."""
        return self.short_message or self.tlvs.get(MESSAGE_PAYLOAD, b"")

    def encode(self) -> bytes:
        if len(self.short_message) > 254:
            raise ValueError("short_message holds at most 254 octets")
        return (
            c_string(self.service_type, limit=5)
            + bytes((self.source.ton, self.source.npi))
            + c_string(self.source.value, limit=20)
            + bytes((self.destination.ton, self.destination.npi))
            + c_string(self.destination.value, limit=20)
            + bytes((self.esm_class, self.protocol_id, self.priority_flag))
            + c_string(self.schedule_delivery_time, limit=16)
            + c_string(self.validity_period, limit=16)
            + bytes((self.registered_delivery, self.replace_if_present))
            + bytes((self.data_coding, self.sm_default_msg_id, len(self.short_message)))
            + self.short_message
            + b"".join(
                struct.pack("!HH", tag, len(value)) + value for tag, value in self.tlvs.items()
            )
        )

    @classmethod
    def decode(cls, body: bytes) -> ShortMessage:
        """Raises :class:`PduError` naming the field that does not fit."""
        cursor = _Cursor(body)
        service_type = cursor.c_string("service_type", 5)
        source = Address(
            cursor.octet("source_addr_ton"),
            cursor.octet("source_addr_npi"),
            cursor.c_string("source_addr", 20),
        )
        destination = Address(
            cursor.octet("dest_addr_ton"),
            cursor.octet("dest_addr_npi"),
            cursor.c_string("destination_addr", 20),
        )
        esm_class = cursor.octet("esm_class")
        protocol_id = cursor.octet("protocol_id")
        priority_flag = cursor.octet("priority_flag")
        schedule = cursor.c_string("schedule_delivery_time", 16)
        validity = cursor.c_string("validity_period", 16)
        registered_delivery = cursor.octet("registered_delivery")
        replace_if_present = cursor.octet("replace_if_present_flag")
        data_coding = cursor.octet("data_coding")
        sm_default_msg_id = cursor.octet("sm_default_msg_id")
        short_message = cursor.octets("short_message", cursor.octet("sm_length"))
        return cls(
            source=source,
            destination=destination,
            esm_class=esm_class,
            data_coding=data_coding,
            short_message=short_message,
            registered_delivery=registered_delivery,
            service_type=service_type,
            protocol_id=protocol_id,
            priority_flag=priority_flag,
            schedule_delivery_time=schedule,
            validity_period=validity,
            replace_if_present=replace_if_present,
            sm_default_msg_id=sm_default_msg_id,
            tlvs=cursor.tlvs(),
        )


@dataclass(frozen=True, slots=True)
class Concatenation:
    """Which part of which long message a segment is (TS 23.040 §9.2.3.24.1/.8, or SAR TLVs)."""

    reference: int
    total: int
    sequence: int


def split_user_data(message: ShortMessage) -> tuple[Concatenation | None, bytes]:
    """The concatenation a segment declares, and its text octets without the UDH.

    Reads IE 00 (8-bit reference) and IE 08 (16-bit reference) of a UDH when
    esm_class has UDHI set, else the sar_* TLVs; other IEs are skipped.
    """
    data = message.user_data
    concatenation: Concatenation | None = None
    if message.esm_class & UDHI:
        if not data or data[0] + 1 > len(data):
            raise PduError("the UDH is longer than the short message", status=ESME_RINVMSGLEN)
        header, data = data[1 : data[0] + 1], data[data[0] + 1 :]
        at = 0
        while at + 2 <= len(header):
            iei, length = header[at], header[at + 1]
            value = header[at + 2 : at + 2 + length]
            if iei == 0x00 and len(value) == 3:
                concatenation = Concatenation(value[0], value[1], value[2])
            elif iei == 0x08 and len(value) == 4:
                concatenation = Concatenation(int.from_bytes(value[:2], "big"), value[2], value[3])
            at += 2 + length
    elif SAR_MSG_REF_NUM in message.tlvs:
        reference = int.from_bytes(message.tlvs[SAR_MSG_REF_NUM], "big")
        total = int.from_bytes(message.tlvs.get(SAR_TOTAL_SEGMENTS, b"\x01"), "big")
        sequence = int.from_bytes(message.tlvs.get(SAR_SEGMENT_SEQNUM, b"\x01"), "big")
        concatenation = Concatenation(reference, total, sequence)
    if concatenation is not None and not 1 <= concatenation.sequence <= concatenation.total:
        concatenation = None  # the handset would ignore such an IE too (TS 23.040)
    return concatenation, data


def decode_text(data: bytes, data_coding: int) -> str:
    """Text octets as a person reads them; an octet the charset lacks becomes U+FFFD.

    data_coding 0 is the GSM 03.38 default alphabet unpacked one septet per
    octet (what SMSCs send over SMPP); 0xF0–0xFF is the GSM message-class
    group, whose bit 2 chooses 8-bit data over GSM-7 (TS 23.038 §4).
    Unknown codings are read as Latin-1 so that no octet is dropped.
    """
    if data_coding & 0xF0 == 0xF0:
        data_coding = 0x04 if data_coding & 0x04 else 0x00
    charset = _CHARSETS.get(data_coding, "latin-1")
    return data.decode(charset, "replace")
