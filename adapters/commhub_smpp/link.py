"""One TCP connection to the SMSC: PDUs written, and each response paired with its request.

SMPP is asynchronous (§2.7): several requests may await their responses at
once, in any order, matched by sequence_number. A link closing fails every
request still waiting, so no caller waits past a dropped connection.
"""

from __future__ import annotations

import asyncio

from commhub.channels import ChannelUnavailable
from commhub_smpp.pdus import ESME_ROK, RESPONSE, Pdu


class Link:
    """One TCP connection to the SMSC: writes PDUs and pairs each response with its request."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.bound = False
        self.closed = False
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._sequence = 0

    def write(self, pdu: Pdu) -> None:
        if self.closed:
            raise ChannelUnavailable("the SMSC link is closed")
        self.writer.write(pdu.encode())

    def answer(self, request: Pdu, status: int = ESME_ROK, body: bytes = b"") -> None:
        """Respond to ``request``; on a closed link the SMSC delivers it again instead."""
        if not self.closed:
            self.write(Pdu(request.command_id | RESPONSE, status, request.sequence, body))

    async def request(self, command_id: int, body: bytes, timeout: float) -> Pdu:
        """Send a request and wait for its response; TimeoutError when none comes in time."""
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        sequence = self._sequence
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._pending[sequence] = future
        try:
            self.write(Pdu(command_id, ESME_ROK, sequence, body))
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(sequence, None)

    def responded(self, pdu: Pdu) -> bool:
        future = self._pending.get(pdu.sequence)
        if future is None or future.done():
            return False
        future.set_result(pdu)
        return True

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.bound = False
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ChannelUnavailable(reason))
        self.writer.close()
