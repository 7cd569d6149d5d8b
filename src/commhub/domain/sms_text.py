"""SMS text: which encoding a message needs, how many segments it costs, how it is cut.

An SMS carries 140 octets. Text that fits the GSM 03.38 default alphabet
(3GPP TS 23.038 §6.2.1) travels as 7-bit septets, 160 to a message; anything
else — Cyrillic, most accents, emoji — forces UCS-2, 70 UTF-16 code units to
a message. A longer message is sent as several segments, each starting with a
6-octet concatenation header (3GPP TS 23.040 §9.2.3.24.1) that leaves 153
septets or 67 code units of text. This is what the preview shows and what the
hub stores with each message, and what the SMPP adapter uses to cut and
encode a long message itself.

Two units are never cut in half: a character of the extension table (``€``,
``[``, ``{``…) is an escape septet plus its own septet (TS 23.038 §6.2.1.1),
and a character outside the Basic Multilingual Plane (an emoji) is a UTF-16
surrogate pair. A half of either is garbage on the handset. Because a Python
``str`` holds whole code points, each such pair is one character here and is
kept whole by cutting between characters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import gsm0338

MAX_SEGMENTS: Final = 10
"""The longest message the hub sends. ``measure`` and ``split`` work for any
length; the core refuses more segments than this (a runaway template costs
money per segment, and many handsets give up reassembling long chains)."""

_ESCAPE: Final = 0x1B
_CODEC: Final = gsm0338.Codec()
_CONCATENATION_IEI: Final = 0x00
"""Information element 00: concatenated short messages, 8-bit reference."""


class SmsEncoding(StrEnum):
    """How the text travels: SMPP data_coding 0 (GSM-7) or 8 (UCS-2)."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True, slots=True)
class _Limits:
    single: int
    concatenated: int


_LIMITS: Final[Mapping[SmsEncoding, _Limits]] = {
    # 140 octets hold 160 septets; the 6-octet UDH leaves 134 octets = 153 septets
    # (plus one fill bit to align the text on a septet, TS 23.040 §9.2.3.24).
    SmsEncoding.GSM7: _Limits(single=160, concatenated=153),
    # 140 octets hold 70 UTF-16 units; 134 octets after the UDH hold 67.
    SmsEncoding.UCS2: _Limits(single=70, concatenated=67),
}


class SmsTextError(ValueError):
    """The text cannot be carried by an SMS in the encoding asked for; the message says where."""


def _gsm7_septets() -> dict[str, int]:
    """Septets per character, read from the codec's own tables.

    Built by decoding every code the codec knows rather than by trusting its
    encoder: the encoder maps the ESCAPE control character itself to a bare
    0x1B, which the handset would read as the start of an extension pair and
    merge with the next character. Decoding a lone 0x1B yields nothing, so
    ESCAPE is left out here and text holding it goes as UCS-2.
    """
    septets: dict[str, int] = {}
    for code in range(0x80):
        if code == _ESCAPE:
            continue
        septets[_CODEC.decode(bytes((code,)))[0]] = 1
    for code in range(0x80):
        try:
            char = _CODEC.decode(bytes((_ESCAPE, code)))[0]
        except UnicodeDecodeError:
            continue  # no extension character at this code
        septets.setdefault(char, 2)
    return septets


_GSM7_SEPTETS: Final[Mapping[str, int]] = _gsm7_septets()


@dataclass(frozen=True, slots=True)
class SmsShape:
    """What sending a text costs: the preview's answer, stored with the message."""

    encoding: SmsEncoding
    characters: int
    """Characters as the user counts them (code points)."""
    units: int
    """GSM-7 septets (an extension character is 2) or UTF-16 code units (an emoji is 2)."""
    segments: int
    per_segment: int
    """Units one segment holds for this message: 160/70 alone, 153/67 when concatenated."""
    remaining: int
    """Units still free in the last segment."""


def _encoding_of(text: str) -> SmsEncoding:
    if all(char in _GSM7_SEPTETS for char in text):
        return SmsEncoding.GSM7
    return SmsEncoding.UCS2


def _width(char: str, encoding: SmsEncoding) -> int:
    if encoding is SmsEncoding.GSM7:
        return _GSM7_SEPTETS[char]
    return 2 if ord(char) > 0xFFFF else 1


def _check_ucs2(text: str) -> None:
    """A lone surrogate (e.g. a JSON ``"\\ud83d"`` escape cut in half) has no UTF-16 form."""
    for position, char in enumerate(text):
        if 0xD800 <= ord(char) <= 0xDFFF:
            raise SmsTextError(
                f"the text holds a lone UTF-16 surrogate U+{ord(char):04X} at character "
                f"{position + 1}; it is half of a character and cannot be sent"
            )


def _parts(text: str, encoding: SmsEncoding) -> list[str]:
    limits = _LIMITS[encoding]
    if sum(_width(char, encoding) for char in text) <= limits.single:
        return [text]
    parts: list[str] = []
    start = used = 0
    for position, char in enumerate(text):
        width = _width(char, encoding)
        if used + width > limits.concatenated:
            parts.append(text[start:position])
            start, used = position, 0
        used += width
    parts.append(text[start:])
    return parts


def _encoding_checked(text: str) -> SmsEncoding:
    encoding = _encoding_of(text)
    if encoding is SmsEncoding.UCS2:
        _check_ucs2(text)
    return encoding


def split(text: str) -> list[str]:
    """The text cut into the parts that go in each segment, in order.

    One part when the text fits a single message; otherwise each part holds at
    most 153 septets or 67 UTF-16 units, and an extension character or an
    emoji that would straddle a boundary moves whole into the next part.
    ``"".join(split(text)) == text`` always; ``split("")`` is ``[""]``.
    """
    return _parts(text, _encoding_checked(text))


def measure(text: str) -> SmsShape:
    """Encoding, length and segment count of ``text`` as a gateway will bill it.

    The empty text measures as one segment of 0 units with the whole segment
    free, so a preview of an empty draft reads naturally; gateways refuse an
    empty body (Twilio answers error 21602, "Message body is required"), and
    the core refuses it before sending.
    """
    encoding = _encoding_checked(text)
    parts = _parts(text, encoding)
    limits = _LIMITS[encoding]
    per_segment = limits.single if len(parts) == 1 else limits.concatenated
    last_units = sum(_width(char, encoding) for char in parts[-1])
    return SmsShape(
        encoding=encoding,
        characters=len(text),
        units=sum(_width(char, encoding) for char in text),
        segments=len(parts),
        per_segment=per_segment,
        remaining=per_segment - last_units,
    )


def encode_part(part: str, encoding: SmsEncoding) -> bytes:
    """The octets of one segment's text as SMPP carries them in short_message.

    GSM-7 is unpacked, one septet per octet with 0x1B before each extension
    character (data_coding 0, SMPP 3.4 §5.2.19); UCS-2 is UTF-16 big-endian
    (data_coding 8), an emoji as its surrogate pair.
    """
    if encoding is SmsEncoding.GSM7:
        for position, char in enumerate(part):
            if char not in _GSM7_SEPTETS:
                raise SmsTextError(
                    f"character {position + 1} ({char!r}) is not in the GSM 03.38 alphabet; "
                    "the text needs UCS-2"
                )
        encoded: bytes = _CODEC.encode(part)[0]
        return encoded
    _check_ucs2(part)
    return part.encode("utf-16-be")


def concatenation_udh(reference: int, total: int, sequence: int) -> bytes:
    """The user data header that tells the handset which message this segment belongs to.

    3GPP TS 23.040 §9.2.3.24.1, concatenated short messages with an 8-bit
    reference: UDHL 05, IEI 00, IEDL 03, then reference, total, sequence. The
    receiver ignores the element when total is 0 or the sequence is 0 or above
    the total, so such values are refused here rather than sent as garbage.
    """
    if not 0 <= reference <= 0xFF:
        raise ValueError(f"concatenation reference {reference} is outside 0..255")
    if not 1 <= total <= 0xFF:
        raise ValueError(f"concatenation total {total} is outside 1..255")
    if not 1 <= sequence <= total:
        raise ValueError(f"concatenation sequence {sequence} is outside 1..{total}")
    return bytes((0x05, _CONCATENATION_IEI, 0x03, reference, total, sequence))
