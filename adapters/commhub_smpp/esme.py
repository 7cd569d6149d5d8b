"""The SMPP gateway: commhub as an ESME bound as a transceiver to one SMSC.

Written on asyncio streams and :mod:`commhub_smpp.pdus` rather than on
aiosmpplib's ``ESME``: that class sends only what it takes from its own
broker queue (so ``send`` could not return the submit_sm_resp ids or raise
on a refusal), splits long text itself with SAR TLVs, answers every
deliver_sm with ESME_ROK as soon as its hook returns (no temporary error
when the hub could not store a message), and runs each hook inside its only
reader loop, so waiting for the hub would stall enquire_link and every
response behind it.

One connection at a time: connect, bind_transceiver, then a reader (which
answers enquire_link and unbind, pairs responses with requests and hands
each deliver_sm to its own task) beside a keep-alive that sends
enquire_link every ``enquire_link_s``. A lost link, a refused bind or an
unanswered enquire_link ends the session; the next one starts after an
exponential backoff with jitter, and a refused password waits the longest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime
from typing import Final

from commhub.adapter_kit import Backoff, GatewayIdentity, describe
from commhub.channels import (
    ChannelHealth,
    ChannelUnavailable,
    EventSink,
    HandOverUnknown,
    OutboundSms,
    SendRejected,
    SendThrottled,
    SmsAccepted,
)
from commhub.domain.sms_text import (
    SmsEncoding,
    concatenation_udh,
    encode_part,
    measure,
    split,
)
from commhub_smpp.config import SmppSettings, sender_kind
from commhub_smpp.inbound import Deliveries
from commhub_smpp.link import Link
from commhub_smpp.pdus import (
    BIND_TRANSCEIVER,
    DATA_CODING_DEFAULT,
    DATA_CODING_UCS2,
    DELIVER_SM,
    ENQUIRE_LINK,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
    ESME_RUNKNOWNERR,
    ESME_RX_T_APPN,
    SUBMIT_SM,
    UDHI,
    UNBIND,
    Address,
    FramingError,
    Pdu,
    PduError,
    ShortMessage,
    bind_transceiver_body,
    generic_nack,
    leading_c_string,
    read_pdu,
    status_text,
)
from commhub_smpp.receipts import canonical_id

log = logging.getLogger(__name__)

KIND: Final = "smpp"
STABLE_AFTER_S: Final = 30.0
"""A session that lasted this long resets the reconnect backoff."""
UNBIND_WAIT_S: Final = 1.0
THROTTLED: Final = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})
TEMPORARY: Final = frozenset({ESME_RSYSERR, ESME_RINVBNDSTS, ESME_RX_T_APPN, ESME_RUNKNOWNERR})
CREDENTIALS: Final = frozenset({ESME_RINVPASWD, ESME_RINVSYSID})


class BindRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status_text(status))
        self.status = status


class SmppGateway(GatewayIdentity):
    """One SMSC account: the :class:`~commhub.channels.SmsGateway` port over SMPP 3.4."""

    kind = KIND

    def __init__(self, *, name: str, settings: SmppSettings) -> None:
        self._name = name
        self.settings = settings
        self._options = settings
        self._link: Link | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._deliveries: Deliveries | None = None
        self._window = asyncio.Semaphore(settings.window)
        self._reference = random.randrange(256)
        self._stopping = False
        self.reconnects = 0
        self.connected_since: datetime | None = None
        self.last_event_at: datetime | None = None
        self.error: str | None = None
        self.smsc_system_id = ""

    # --- the port -------------------------------------------------------------------------

    @property
    def window(self) -> int:
        return self.settings.window

    async def start(self, sink: EventSink) -> None:
        self._deliveries = Deliveries(source=self._name, settings=self.settings, sink=sink)
        self._stopping = False
        self._run_task = asyncio.create_task(self._run(), name=f"smpp {self._name}")

    async def stop(self) -> None:
        """Unbind (waiting briefly for unbind_resp) and close; unanswered deliveries come again."""
        self._stopping = True
        link = self._link
        if link is not None and link.bound:
            with contextlib.suppress(ChannelUnavailable, TimeoutError):
                await link.request(
                    UNBIND, b"", min(UNBIND_WAIT_S, self.settings.response_timeout_s)
                )
            link.close("the gateway is stopping")
        if self._run_task is not None:
            self._run_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._run_task
            self._run_task = None
        if self._deliveries is not None:
            await self._deliveries.close()

    def health(self) -> ChannelHealth:
        link = self._link
        bound = link is not None and link.bound
        return ChannelHealth(
            name=self._name,
            kind=KIND,
            connected=bound,
            last_event_at=self.last_event_at,
            connected_since=self.connected_since if bound else None,
            reconnects=self.reconnects,
            error=self.error,
            detail={
                "host": self.settings.host,
                "port": self.settings.port,
                "system_id": self.settings.system_id,
                "smsc_system_id": self.smsc_system_id,
                "bound": bound,
                "awaiting_response": link.in_flight if link is not None else 0,
                "long_messages_waiting": (
                    self._deliveries.long_messages_waiting if self._deliveries else 0
                ),
            },
        )

    async def send(self, message: OutboundSms) -> SmsAccepted:
        link = self._link
        if link is None or not link.bound:
            raise ChannelUnavailable(f"SMSC {self._name} is not bound")
        bodies = self._submits(message)
        ids = [await self._submit(link, body, message.key) for body in bodies]
        return SmsAccepted(gateway_ids=tuple(ids), accepted_at=datetime.now(UTC))

    # --- sending --------------------------------------------------------------------------

    def _submits(self, message: OutboundSms) -> list[bytes]:
        """Every submit_sm body of ``message``, built before the first goes out.

        A long text goes as one submit_sm per part, each with UDHI set in
        esm_class and the concatenation UDH (TS 23.040 §9.2.3.24.1) before
        its text; the parts share a reference that rotates through 0..255.
        """
        source = self._source(message.sender or (self.numbers[0] if self.numbers else ""))
        destination = self._destination(message.recipient)
        try:
            encoding = measure(message.text).encoding
            payloads = [encode_part(part, encoding) for part in split(message.text)]
            data_coding = DATA_CODING_UCS2 if encoding is SmsEncoding.UCS2 else DATA_CODING_DEFAULT
            self._reference = (self._reference + 1) % 256
            bodies = []
            for sequence, payload in enumerate(payloads, 1):
                udh = b""
                if len(payloads) > 1:
                    udh = concatenation_udh(self._reference, len(payloads), sequence)
                submit = ShortMessage(
                    source=source,
                    destination=destination,
                    esm_class=UDHI if udh else 0,
                    data_coding=data_coding,
                    short_message=udh + payload,
                    registered_delivery=1 if self.settings.registered_delivery else 0,
                    service_type=self.settings.service_type,
                )
                bodies.append(submit.encode())
        except ValueError as exc:  # SmsTextError, or more parts than a UDH can number
            raise SendRejected(str(exc)) from None
        return bodies

    def _source(self, sender: str) -> Address:
        if not sender:
            return Address(0, 0, "")  # the SMSC's default for the account
        try:
            kind = sender_kind(sender)
        except ValueError as exc:
            raise SendRejected(f"sender: {exc}") from None
        settings = self.settings
        if kind == "number":
            return Address(settings.source_ton, settings.source_npi, sender[1:])
        if kind == "short_code":
            return Address(settings.short_code_ton, settings.short_code_npi, sender)
        return Address(settings.alphanumeric_ton, settings.alphanumeric_npi, sender)

    def _destination(self, recipient: str) -> Address:
        if not _is_e164(recipient):
            raise SendRejected(f"recipient {recipient!r} is not a number in E.164 (+79161234567)")
        return Address(self.settings.dest_ton, self.settings.dest_npi, recipient[1:])

    async def _submit(self, link: Link, body: bytes, key: str) -> str:
        """One submit_sm within the window; the SMSC's message id, or the error it means."""
        timeout = self.settings.response_timeout_s
        async with self._window:
            try:
                response = await link.request(SUBMIT_SM, body, timeout)
            except TimeoutError:
                # The submit_sm went out: the SMSC may have taken it (its receipt will say).
                raise HandOverUnknown(
                    f"SMSC {self._name} did not answer submit_sm in {timeout:g}s"
                ) from None
        status = response.status
        if status == ESME_ROK:
            try:
                return canonical_id(leading_c_string(response.body))
            except PduError as exc:
                raise ChannelUnavailable(
                    f"SMSC {self._name}: unreadable submit_sm_resp: {exc}"
                ) from None
        reason = status_text(status)
        log.info("SMPP %s: submit_sm for %s refused: %s", self._name, key, reason)
        if status in THROTTLED:
            raise SendThrottled(f"SMSC {self._name}: {reason}")
        if status in TEMPORARY or status in self.settings.retry_statuses:
            raise ChannelUnavailable(f"SMSC {self._name}: {reason}")
        raise SendRejected(reason)

    # --- the connection ---------------------------------------------------------------------

    async def _run(self) -> None:
        settings = self.settings
        backoff = Backoff(
            settings.reconnect_min_s, settings.reconnect_max_s, stable_after_s=STABLE_AFTER_S
        )
        while not self._stopping:
            backoff.attempt()
            slow = False
            try:
                await self._session()
            except BindRefused as exc:
                self.error = f"bind refused: {exc}"
                slow = exc.status in CREDENTIALS
                log.error("SMPP %s: %s", self._name, self.error)
            except (OSError, TimeoutError, ChannelUnavailable) as exc:
                self.error = describe(exc)
                log.warning(
                    "SMPP %s at %s:%d: %s", self._name, settings.host, settings.port, self.error
                )
            except Exception as exc:
                # Whatever went wrong, the gateway reconnects rather than falling silent.
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("SMPP %s: the session failed", self._name)
            self.connected_since = None
            if self._stopping:
                return
            # Refused credentials will not mend in a second: wait the longest pause.
            pause = backoff.pause()
            if slow:
                pause = settings.reconnect_max_s
            log.info("SMPP %s: reconnecting in %.1fs", self._name, pause)
            await asyncio.sleep(pause)
            self.reconnects += 1

    async def _session(self) -> None:
        settings = self.settings
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(settings.host, settings.port), settings.response_timeout_s
        )
        link = Link(reader, writer)
        self._link = link
        reading = asyncio.create_task(self._read(link), name=f"smpp {self._name} reader")
        keeping: asyncio.Task[str] | None = None
        try:
            body = bind_transceiver_body(
                system_id=settings.system_id,
                password=settings.password.get_secret_value(),
                system_type=settings.system_type,
                address_range=settings.address_range,
            )
            response = await link.request(BIND_TRANSCEIVER, body, settings.response_timeout_s)
            if response.status != ESME_ROK:
                raise BindRefused(response.status)
            link.bound = True
            with contextlib.suppress(PduError):  # only shown in health; not worth the bind
                self.smsc_system_id = leading_c_string(response.body, limit=15)
            self.connected_since = datetime.now(UTC)
            self.error = None
            log.info("SMPP %s: bound to %s:%d", self._name, settings.host, settings.port)
            keeping = asyncio.create_task(self._keep_alive(link), name=f"smpp {self._name} alive")
            done, _ = await asyncio.wait({reading, keeping}, return_when=asyncio.FIRST_COMPLETED)
            raise ChannelUnavailable(done.pop().result())
        finally:
            link.close("the SMSC link was lost")
            for task in (reading, keeping):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _keep_alive(self, link: Link) -> str:
        """enquire_link every ``enquire_link_s`` (SMPP 3.4 §4.11); returns why the link is dead."""
        while True:
            await asyncio.sleep(self.settings.enquire_link_s)
            try:
                await link.request(ENQUIRE_LINK, b"", self.settings.response_timeout_s)
            except TimeoutError:
                return "no answer to enquire_link"
            except ChannelUnavailable as exc:
                return str(exc)
            if self._deliveries is not None:
                self._deliveries.sweep()

    async def _read(self, link: Link) -> str:
        """Read PDUs until the link ends; returns why it ended."""
        while True:
            try:
                pdu = await read_pdu(link.reader)
            except FramingError as exc:
                log.error("SMPP %s: unreadable PDU, reconnecting: %s", self._name, exc)
                return f"unreadable PDU from the SMSC: {exc}"
            except (asyncio.IncompleteReadError, OSError):
                return "the SMSC closed the connection"
            self.last_event_at = datetime.now(UTC)
            if pdu.is_response:
                if not link.responded(pdu):
                    log.info(
                        "SMPP %s: response 0x%08X (%s) to no request waiting (sequence %d)",
                        self._name,
                        pdu.command_id,
                        status_text(pdu.status),
                        pdu.sequence,
                    )
            elif pdu.command_id == ENQUIRE_LINK:
                link.answer(pdu)
            elif pdu.command_id == DELIVER_SM:
                self._delivered(link, pdu)
            elif pdu.command_id == UNBIND:
                link.answer(pdu)
                return "the SMSC unbound"
            else:
                log.warning("SMPP %s: unexpected command 0x%08X", self._name, pdu.command_id)
                link.write(generic_nack(pdu.sequence, ESME_RINVCMDID))

    # --- what the SMSC delivers -------------------------------------------------------------

    def _delivered(self, link: Link, pdu: Pdu) -> None:
        """Hand a deliver_sm over; it is answered once the hub has stored its event."""
        assert self._deliveries is not None

        def reply(status: int) -> None:
            link.answer(pdu, status, b"\0")  # deliver_sm_resp's message_id is unused (§4.6.2)

        try:
            self._deliveries.delivered(ShortMessage.decode(pdu.body), reply)
        except PduError as exc:
            log.warning(
                "SMPP %s: malformed deliver_sm (sequence %d), answered generic_nack: %s; body %s",
                self._name,
                pdu.sequence,
                exc,
                pdu.body[:160].hex(),
            )
            link.write(generic_nack(pdu.sequence, exc.status))


def _is_e164(value: str) -> bool:
    try:
        return sender_kind(value) == "number"
    except ValueError:
        return False
