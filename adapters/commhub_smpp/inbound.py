"""What the SMSC delivers (deliver_sm): delivery receipts and messages people sent us.

Each becomes an :class:`~commhub.channels.SmsReport` or
:class:`~commhub.channels.SmsReceived` with a ``settled`` future, and its
deliver_sm_resp waits for that future: ESME_ROK once the hub stored the
event, ESME_RX_T_APPN (a temporary error, so the SMSC delivers it again)
when storing failed or took longer than ``settle_timeout_s``.

A long message arrives as parts (UDH IE 00 or 08, or sar_* TLVs), in any
order. Each part but the one completing the message is answered at once:
an SMSC that sends one part at a time would otherwise wait for ever. The
parts are joined in memory and the whole message is handed over once; the
completing part's answer waits for it. A message whose parts stop coming is
handed over after ``LONG_MESSAGE_TTL_S`` with what arrived, gaps marked.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from commhub.channels import EventSink, SmsReceived, SmsReport
from commhub_smpp.config import SmppSettings
from commhub_smpp.pdus import (
    ESME_ROK,
    ESME_RX_T_APPN,
    Address,
    ShortMessage,
    decode_text,
    split_user_data,
)
from commhub_smpp.receipts import is_receipt, read_receipt

log = logging.getLogger(__name__)

LONG_MESSAGE_TTL_S: Final = 600.0
"""How long the parts of a long message wait for the rest (and a stored one's repeats are known)."""
REPEAT_WINDOW_S: Final = 900
"""An inbound message delivered again within this window keeps its id (SMPP gives MO no id)."""
TON_INTERNATIONAL: Final = 1
GAP: Final = " […] "

Reply = Callable[[int], None]
"""Answers the deliver_sm with a command status, on the link it came by."""
LongKey = tuple[str, str, int, int]
"""Sender, recipient, concatenation reference and total: one long message."""


@dataclass(eq=False)
class _LongMessage:
    """The parts of one long message that arrived so far."""

    total: int
    data_coding: int
    started: float
    parts: dict[int, bytes] = field(default_factory=dict)
    handing: asyncio.Task[int] | None = None
    """The hand-over under way once complete; its result is the deliver_sm_resp status."""
    done_at: float | None = None


class Deliveries:
    """Turns deliver_sm into the hub's events and answers each once its event is stored."""

    def __init__(self, *, source: str, settings: SmppSettings, sink: EventSink) -> None:
        self._source = source
        self._settings = settings
        self._sink = sink
        self._long: dict[LongKey, _LongMessage] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def long_messages_waiting(self) -> int:
        return sum(1 for waiting in self._long.values() if waiting.done_at is None)

    def delivered(self, message: ShortMessage, reply: Reply) -> None:
        """Take one deliver_sm; raises :class:`~commhub_smpp.pdus.PduError` when it is malformed."""
        if is_receipt(message):
            self._report(message, reply)
        else:
            self._received(message, reply)

    async def close(self) -> None:
        """Stop waiting for the hub: unanswered deliveries are delivered again by the SMSC."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def sweep(self) -> None:
        """Forget stored long messages; hand over, gaps marked, those whose parts stopped coming."""
        now = time.monotonic()
        for key, waiting in list(self._long.items()):
            if waiting.done_at is not None:
                if now - waiting.done_at > LONG_MESSAGE_TTL_S:
                    del self._long[key]
            elif waiting.handing is None and now - waiting.started > LONG_MESSAGE_TTL_S:
                missing = sorted(set(range(1, waiting.total + 1)) - set(waiting.parts))
                log.warning(
                    "SMPP %s: parts %s of %d of a message from %s never came; kept what arrived",
                    self._source,
                    missing,
                    waiting.total,
                    key[0],
                )
                text = GAP.join(
                    decode_text(waiting.parts[sequence], waiting.data_coding)
                    for sequence in sorted(waiting.parts)
                )
                waiting.done_at = now
                self._spawn(self._hand_over(self._inbound(key, text, len(waiting.parts))))

    # --- receipts ---------------------------------------------------------------------------

    def _report(self, message: ShortMessage, reply: Reply) -> None:
        receipt = read_receipt(message, receipt_ids=self._settings.receipt_ids)
        state = receipt.state
        if state is None:
            log.info(
                "SMPP %s: the receipt for %s says %s: nothing changes",
                self._source,
                receipt.message_id,
                receipt.stat,
            )
            reply(ESME_ROK)
            return
        report = SmsReport(
            source=self._source,
            gateway_id=receipt.message_id,
            state=state,
            at=datetime.now(UTC),
            reason=receipt.reason,
            settled=asyncio.get_running_loop().create_future(),
            handset=_number(message.source),
            text_head=receipt.text_head,
        )
        self._reply_after(self._spawn(self._hand_over(report)), reply)

    # --- messages people sent us -----------------------------------------------------------

    def _received(self, message: ShortMessage, reply: Reply) -> None:
        concatenation, data = split_user_data(message)
        sender, recipient = _number(message.source), _number(message.destination)
        if concatenation is None or concatenation.total == 1:
            event = self._inbound(
                (sender, recipient, -1, 1), decode_text(data, message.data_coding), 1
            )
            self._reply_after(self._spawn(self._hand_over(event)), reply)
            return
        key = (sender, recipient, concatenation.reference, concatenation.total)
        waiting = self._long.get(key)
        if waiting is None:
            waiting = _LongMessage(concatenation.total, message.data_coding, time.monotonic())
            self._long[key] = waiting
        if waiting.done_at is not None:
            reply(ESME_ROK)  # a part of a message already stored, delivered again
            return
        waiting.parts[concatenation.sequence] = data
        if waiting.handing is None and len(waiting.parts) == waiting.total:
            waiting.handing = self._spawn(self._hand_over_long(key, waiting))
        if waiting.handing is None:
            reply(ESME_ROK)  # kept in memory until the other parts arrive
        else:
            self._reply_after(waiting.handing, reply)

    async def _hand_over_long(self, key: LongKey, waiting: _LongMessage) -> int:
        data = b"".join(waiting.parts[sequence] for sequence in sorted(waiting.parts))
        event = self._inbound(key, decode_text(data, waiting.data_coding), waiting.total)
        try:
            status = await self._hand_over(event)
        finally:
            waiting.handing = None
        if status == ESME_ROK:
            waiting.done_at = time.monotonic()
        return status

    def _inbound(self, key: LongKey, text: str, parts: int) -> SmsReceived:
        """SMPP gives an inbound message no id: one is made of what it says and when.

        Delivered again within ``REPEAT_WINDOW_S`` (same sender, recipient,
        concatenation reference and text), a message gets the same id, so
        the hub stores it once; the same words sent later are a new message.
        """
        sender, recipient, reference, total = key
        bucket = int(time.time() // REPEAT_WINDOW_S)
        digest = hashlib.sha256(
            "\x1f".join((sender, recipient, f"{reference}/{total}", text, str(bucket))).encode()
        ).hexdigest()
        return SmsReceived(
            source=self._source,
            external_id=f"mo-{digest[:32]}",
            sender=sender,
            recipient=recipient,
            text=text,
            received_at=datetime.now(UTC),
            parts=parts,
            settled=asyncio.get_running_loop().create_future(),
        )

    # --- handing over -----------------------------------------------------------------------

    async def _hand_over(self, event: SmsReceived | SmsReport) -> int:
        """Give ``event`` to the hub and wait until it is stored: the deliver_sm_resp status."""
        settled = event.settled
        assert settled is not None
        settled.add_done_callback(_retrieve)
        try:
            self._sink(event)
            await asyncio.wait_for(asyncio.shield(settled), self._settings.settle_timeout_s)
        except TimeoutError:
            log.warning(
                "SMPP %s: %s not stored in time; redelivery asked", self._source, _name(event)
            )
            return ESME_RX_T_APPN
        except Exception as exc:
            log.warning("SMPP %s: %r not stored (%s); redelivery asked", self._source, event, exc)
            return ESME_RX_T_APPN
        return ESME_ROK

    def _reply_after(self, handing: asyncio.Task[int], reply: Reply) -> None:
        async def answer() -> None:
            reply(await handing)

        self._spawn(answer())

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _number(address: Address) -> str:
    """An address as the SMSC gave it, with ``+`` where its TON says international (§5.2.5)."""
    value = address.value.strip()
    if address.ton == TON_INTERNATIONAL and value.isdigit():
        return "+" + value
    return value


def _name(event: SmsReceived | SmsReport) -> str:
    """An event for the log, without the words people wrote."""
    if isinstance(event, SmsReport):
        return f"the receipt for {event.gateway_id}"
    return f"the message {event.external_id} from {event.sender}"


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a settled future's error as seen: the hub may fail it after we stopped waiting."""
    if not future.cancelled():
        future.exception()
