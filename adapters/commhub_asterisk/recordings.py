"""AMI sessions recorded from a real Asterisk, read back for replay.

A recording is the byte stream one AMI connection received (``NAME.ami``)
and, beside it, when each TCP read arrived (``NAME.timing.json``: seconds
since connect, byte offset, length). The replay server, the tests and the
benchmarks read them through here, unchanged; :func:`scale_burst` makes many
concurrent calls out of a recorded few by giving each copy ids of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from commhub_asterisk.wire import BANNER, END

UNIQUEID: Final = re.compile(rb"(?<![\d.])(\d{9,12})\.(\d+)(?![\d.])")
"""Asterisk's Uniqueid/Linkedid (``<epoch>.<sequence>``), wherever it appears (ids, file names)."""
BRIDGE_ID: Final = re.compile(
    rb"\b[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"
)
CHANNEL_SEQUENCE: Final = re.compile(rb"(@[\w-]+?|/[\w.]+?)-([0-9a-f]{8})(?=[;,\r])")
"""The per-channel counter in a channel name: ``Local/201@operators-0000007d;1``."""


class RecordingError(Exception):
    """A recording file is missing or not an AMI session."""


@dataclass(frozen=True, slots=True)
class Recording:
    """One recorded AMI session: the bytes, and when each read arrived."""

    name: str
    raw: bytes
    packets: tuple[tuple[float, int, int], ...]
    body_offset: int
    """Where the events start: after the banner and the response to ``Login``."""

    @property
    def body(self) -> bytes:
        """Everything Asterisk sent after accepting the login."""
        return self.raw[self.body_offset :]

    def paced_body(self) -> Iterator[tuple[float, bytes]]:
        """The body as it was read: (seconds since the first body byte, bytes) per TCP read."""
        start: float | None = None
        for seconds, offset, length in self.packets:
            end = offset + length
            if end <= self.body_offset:
                continue
            offset = max(offset, self.body_offset)
            if start is None:
                start = seconds
            yield seconds - start, self.raw[offset:end]


def load_recording(folder: Path, name: str) -> Recording:
    """Read ``NAME.ami`` and ``NAME.timing.json`` from ``folder``."""
    stream, timing = folder / f"{name}.ami", folder / f"{name}.timing.json"
    try:
        raw = stream.read_bytes()
        packets = json.loads(timing.read_text(encoding="utf-8"))["packets"]
    except (OSError, ValueError, KeyError) as exc:
        raise RecordingError(f"cannot read the recording {name!r} in {folder}: {exc}") from None
    if not raw.startswith(BANNER):
        raise RecordingError(f"{stream} does not start with an AMI banner")
    banner_end = raw.index(b"\r\n") + 2
    login_end = raw.find(END, banner_end)
    if login_end < 0 or not raw[banner_end:].startswith(b"Response: "):
        raise RecordingError(f"{stream} has no response to Login after its banner")
    return Recording(
        name=name,
        raw=raw,
        packets=tuple((float(s), int(o), int(n)) for s, o, n in packets),
        body_offset=login_end + len(END),
    )


def split_blocks(data: bytes) -> list[bytes]:
    """The AMI messages in ``data``, each with its closing empty line."""
    return [block + END for block in data.split(END) if block.strip(b"\r\n")]


def scale_burst(recording: Recording, copies: int) -> bytes:
    """``copies`` copies of the recorded calls, interleaved message by message.

    Each copy gets ids of its own (Uniqueid/Linkedid, bridge ids, channel
    counters), so ten recorded calls become ``10 × copies`` calls all in
    progress at once, each message in its recorded order within its call.
    """
    if copies < 1:
        raise ValueError("copies must be at least 1")
    blocks = [b for b in split_blocks(recording.body) if b.startswith(b"Event: ")]
    width = len(str(copies))
    renumbered = [[_renumber(block, k, width) for block in blocks] for k in range(copies)]
    return b"".join(block for group in zip(*renumbered, strict=True) for block in group)


def _renumber(block: bytes, copy: int, width: int) -> bytes:
    """``block`` with every id made unique to ``copy`` (copy 0 keeps nothing as it was)."""
    suffix = str(copy).zfill(width).encode()
    block = UNIQUEID.sub(lambda m: m[1] + b"." + m[2] + suffix, block)
    block = BRIDGE_ID.sub(lambda m: f"{copy:08x}".encode() + m[1], block)
    return CHANNEL_SEQUENCE.sub(lambda m: m[1] + b"-" + m[2] + suffix, block)
