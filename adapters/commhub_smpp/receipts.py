"""Delivery receipts: which message a deliver_sm reports on and where it got to.

SMPP 3.4 Appendix B gives the receipt as text in short_message
(``id:… sub:… dlvrd:… submit date:… done date:… stat:DELIVRD err:000``)
and §5.3.2.12/§5.3.2.35 as the receipted_message_id and message_state
TLVs. SMSCs mix them freely: a receipt is recognised by its esm_class
(§5.2.12), by either TLV or by the text alone, and the TLVs win where both
are given.

The id in the receipt must read the same as the submit_sm_resp gave it, or
the report matches no message. SMSCs differ: leading zeros come and go,
hex case changes, and some give the submit_sm_resp id in hex and the
receipt's in decimal (or the reverse). So every id is brought to one
canonical form (see :func:`canonical_id`), and the ``receipt_ids`` setting
converts the text receipt's id between decimal and hex where an SMSC needs
it. The TLV carries the id as submitted (§5.3.2.12) and is never converted.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from commhub.channels import DeliveryState
from commhub_smpp.pdus import (
    INTERMEDIATE_NOTIFICATION,
    MESSAGE_STATE,
    MESSAGE_TYPE_MASK,
    NETWORK_ERROR_CODE,
    RECEIPTED_MESSAGE_ID,
    SMSC_DELIVERY_RECEIPT,
    PduError,
    ShortMessage,
    decode_text,
)

ReceiptIds = Literal["as_submitted", "decimal", "hex"]
"""How a text receipt's id reads next to the submit_sm_resp id: the same way, or converted."""

_FIELD: Final = re.compile(r"\b(id|stat|err):\s*(\S*)", re.IGNORECASE)
_TEXT: Final = re.compile(r"\btext:(.*)\Z", re.IGNORECASE | re.DOTALL)
"""The receipt's last field: the first characters of the message it reports on (Appendix B)."""
_HEX: Final = frozenset(string.hexdigits)

STATES: Final[Mapping[str, DeliveryState | None]] = {
    "DELIVRD": DeliveryState.DELIVERED,
    "ENROUTE": DeliveryState.SENT,
    "ACCEPTD": DeliveryState.SENT,
    "EXPIRED": DeliveryState.UNDELIVERED,
    "UNDELIV": DeliveryState.UNDELIVERED,
    "REJECTD": DeliveryState.UNDELIVERED,
    "DELETED": DeliveryState.UNDELIVERED,
    "UNKNOWN": None,
}
"""Appendix B's stat values; UNKNOWN says nothing, so it changes nothing."""

MESSAGE_STATES: Final[Mapping[int, str]] = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
"""message_state TLV values (§5.2.28) by the stat word a text receipt uses for them."""


@dataclass(frozen=True, slots=True)
class Receipt:
    message_id: str
    stat: str
    error: str = ""
    text_head: str = ""

    @property
    def state(self) -> DeliveryState | None:
        """Where the message got to; ``None`` when the SMSC does not know (UNKNOWN, odd words)."""
        return STATES.get(self.stat)

    @property
    def reason(self) -> str:
        """``UNDELIV err:001``; empty for a delivered message."""
        if self.state is DeliveryState.DELIVERED:
            return ""
        return f"{self.stat} err:{self.error}" if self.error else self.stat


def canonical_id(raw: str) -> str:
    """One spelling per message id: hex-looking ids lower-cased without leading zeros.

    ``"0A1B"``, ``"a1b"`` and ``"00a1b"`` are one message; so are ``"0042"``
    and ``"42"``. Ids with other characters (UUIDs, base-62) are kept as given.
    """
    value = raw.strip().strip("\0")
    if value and all(char in _HEX for char in value):
        return value.lower().lstrip("0") or "0"
    return value


def _converted(raw: str, receipt_ids: ReceiptIds) -> str:
    """The text receipt's id in the form the submit_sm_resp used."""
    value = raw.strip()
    try:
        if receipt_ids == "decimal":
            return format(int(value, 10), "x")
        if receipt_ids == "hex":
            return str(int(value, 16))
    except ValueError:
        pass  # not a number in that base: matched as given, and logged by the caller if not
    return value


def is_receipt(message: ShortMessage) -> bool:
    if (message.esm_class & MESSAGE_TYPE_MASK) in (
        SMSC_DELIVERY_RECEIPT,
        INTERMEDIATE_NOTIFICATION,
    ):
        return True
    if RECEIPTED_MESSAGE_ID in message.tlvs or MESSAGE_STATE in message.tlvs:
        return True
    fields = _fields(message)
    return "id" in fields and "stat" in fields


def _fields(message: ShortMessage) -> dict[str, str]:
    text = decode_text(message.user_data, message.data_coding)
    fields: dict[str, str] = {}
    for name, value in _FIELD.findall(text):
        fields.setdefault(name.lower(), value)
    quoted = _TEXT.search(text)
    if quoted:
        fields["text"] = quoted.group(1)
    return fields


def read_receipt(message: ShortMessage, *, receipt_ids: ReceiptIds) -> Receipt:
    """The receipt a deliver_sm carries; :class:`PduError` when it names no message."""
    fields = _fields(message)
    tlv_id = message.tlvs.get(RECEIPTED_MESSAGE_ID, b"").split(b"\0", 1)[0]
    if tlv_id.strip():
        message_id = tlv_id.decode("latin-1")
    elif fields.get("id"):
        message_id = _converted(fields["id"], receipt_ids)
    else:
        raise PduError("a delivery receipt without a message id")
    state = message.tlvs.get(MESSAGE_STATE, b"")
    if len(state) == 1:
        stat = MESSAGE_STATES.get(state[0], "UNKNOWN")
    else:
        stat = fields.get("stat", "UNKNOWN").upper()
    error = fields.get("err", "")
    network_error = message.tlvs.get(NETWORK_ERROR_CODE, b"")
    if not error and len(network_error) == 3:
        error = f"{int.from_bytes(network_error[1:], 'big'):03d}"  # type octet, then the code
    return Receipt(
        message_id=canonical_id(message_id),
        stat=stat,
        error=error,
        text_head=fields.get("text", ""),
    )
