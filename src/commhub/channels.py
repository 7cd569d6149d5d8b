"""The ports: what crosses between the core and the adapters.

An adapter turns its protocol into these events and back, nothing else. It
implements :class:`Channel` (``start(sink)``/``stop()``/``health()``) and,
for a PBX, :class:`Telephony` (``originate``). The core hands it an
:data:`EventSink` that never blocks: the adapter calls it from its own
reader loop for every event.

Call events are *snapshots*: each :class:`CallUpdated` carries the whole
call as the PBX has shown it so far, so the core may keep only the newest
one per call when its database lags, and a replayed snapshot changes nothing.

Mail arrives as :class:`EmailArrived`, the raw message with where it was
found; the core parses, files and acknowledges it (``settled``) once it is
stored, so the adapter flags or moves only what is safely on a card. The
adapter sends what a :class:`Mailbox` is given byte for byte: the core builds
every message, its Message-ID and threading headers included.

An SMS gateway (:class:`SmsGateway`) sends one :class:`OutboundSms` at a time
(the core keeps its rate) and reports :class:`SmsReceived` and
:class:`SmsReport` events. Gateways that call back over HTTP also implement
:class:`WebhookReceiver`: the web app hands them each request under
``/hooks/{channel}/`` and the adapter checks its signature or secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from commhub.domain.interactions import DeliveryState as DeliveryState  # part of the port
from commhub.domain.interactions import Direction, Status


class ChannelError(Exception):
    """Base of the errors an adapter raises at its edge; never a library's own exception."""


class ChannelConfigError(ChannelError):
    """A channel's configuration is wrong; the message names the setting."""


class ChannelUnavailable(ChannelError):
    """The outside system cannot be reached now (PBX disconnected, gateway down)."""


class HandOverUnknown(ChannelUnavailable):
    """The message went out but its answer never came (a timeout, a connection cut mid-reply).

    The gateway may have taken it: the core neither retries nor fails such a
    message but holds it as *uncertain* until the gateway or a person says.
    Raise plain :class:`ChannelUnavailable` only when the message surely did
    not reach the gateway (refused connection, a 5xx or 429 answer).
    """


class OriginateRejected(ChannelError):
    """The PBX refused to place a call; the message is the PBX's reason."""


@dataclass(frozen=True, slots=True)
class CallUpdated:
    """A call as the PBX has shown it so far; a newer snapshot replaces an older one.

    ``external_id`` is stable for the call's whole life (Asterisk: the PBX
    name and the Linkedid). ``number`` is the customer's number exactly as the
    PBX presented it (empty when withheld) and ``region`` the region used to
    read it when it has no country code. ``operators`` are the extensions that
    talked with the customer, first one first (a transfer adds the next);
    ``rang`` those whose phones rang (for a call an operator dialled, their
    own phone). A snapshot says only what the PBX has shown: a field it does
    not know is empty or ``None``, and the core never lets an empty field
    erase a fact it already stored.

    Three durations, in seconds, known once the call has ended:
    ``total_s`` from the moment the caller reached the PBX to hang-up;
    ``wait_s`` the part of it before the first operator answered (IVR
    greeting, queue, ringing; the whole call when nobody answered);
    ``operator_talk`` each operator's time connected with the customer, in
    the order they talked. ``duration_s`` is the operators' talk together.
    ``answered_at`` is when the first operator was connected, never the
    moment an IVR or a queue answered the line.
    """

    source: str
    external_id: str
    direction: Direction
    status: Status
    ended: bool
    started_at: datetime
    number: str = ""
    caller_name: str = ""
    region: str | None = None
    did: str = ""
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: int | None = None
    total_s: int | None = None
    wait_s: int | None = None
    operator_talk: tuple[tuple[str, int], ...] = ()
    operators: tuple[str, ...] = ()
    rang: tuple[str, ...] = ()
    queue: str | None = None
    recording: str | None = None
    request_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallOffered:
    """An operator's phone started ringing with ``call``: the moment for a screen pop."""

    call: CallUpdated
    extension: str


@dataclass(frozen=True, slots=True)
class CallsInProgress:
    """The calls a PBX has up right now, reported each time its link (re)connects.

    When ``complete`` (the PBX's own list of channels, asked for after a
    (re)connect), every call whose ``external_id`` starts with ``prefix``
    that the log still shows in progress, that began before ``at`` and is not
    in ``external_ids``, ended while nobody listened (the hub was stopped, or
    the link was down): the core ends it where it was last known to be up,
    with ``approximate_end_s`` saying how long after that its end was
    learned, so no call stays "in progress" for ever. Otherwise (a
    heartbeat from the adapter's own view) it only records that the listed
    calls were up at ``at``, which bounds that approximation after a crash.
    """

    source: str
    prefix: str
    external_ids: frozenset[str]
    at: datetime
    complete: bool = True


@dataclass(frozen=True, slots=True)
class EmailCursor:
    """How far a mailbox folder has been imported: its UIDVALIDITY and the last UID stored."""

    uidvalidity: int
    last_uid: int


@dataclass(frozen=True, slots=True, eq=False)
class EmailArrived:
    """One message found in a watched mailbox folder, as the server holds it.

    ``raw`` is the message's bytes; when it is larger than the channel's
    limit, only its header (``truncated``) and ``size`` is the server's
    RFC822.SIZE. The core stores the message (or, if it cannot be parsed,
    keeps it raw with the error) and then resolves ``settled``; the adapter
    acts on the message on the server only after that. The UID becomes the
    folder's cursor in the same transaction, so a restart resumes after it.
    """

    source: str
    folder: str
    uidvalidity: int
    uid: int
    raw: bytes
    settled: asyncio.Future[None]
    size: int = 0
    truncated: bool = False
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True, eq=False)
class SmsReceived:
    """An SMS someone sent to one of our numbers, whole (the gateway joined its parts).

    ``external_id`` is the gateway's id for it (Twilio's MessageSid, Kannel's
    or the SMSC's message id): the same message delivered twice is one. When
    ``settled`` is given the core resolves it once the message is stored (or
    sets an exception when it could not be): an adapter acknowledges to its
    gateway only then (HTTP 200, ``deliver_sm_resp``), so a failure makes the
    gateway deliver it again instead of losing it.
    """

    source: str
    external_id: str
    sender: str
    """The number as the gateway gave it; the core normalises it like a caller's."""
    recipient: str
    text: str
    received_at: datetime
    parts: int = 1
    settled: asyncio.Future[None] | None = None


@dataclass(frozen=True, slots=True, eq=False)
class SmsReport:
    """A delivery report on one part of a message we sent, by the id the gateway gave it.

    ``settled`` as for :class:`SmsReceived`.
    """

    source: str
    gateway_id: str
    state: DeliveryState
    at: datetime
    reason: str = ""
    """The gateway's or the network's words for a failure (``30003 Unreachable``)."""
    settled: asyncio.Future[None] | None = None
    handset: str = ""
    """The phone the message went to, where the report says (an SMPP receipt's source)."""
    text_head: str = ""
    """The start of the message's text, where the report quotes it (an SMPP receipt's ``text:``).

    With ``handset``, it ties a report to a message whose hand-over a crash
    cut off before the gateway's id was written down.
    """


InboundEvent = CallUpdated | CallOffered | CallsInProgress | EmailArrived | SmsReceived | SmsReport

EventSink = Callable[[InboundEvent], None]
"""Takes an event and returns at once; the core queues the slow work."""


@dataclass(frozen=True, slots=True)
class OriginateCall:
    """Ring the operator's phone at ``extension``, then dial ``number`` (E.164) from it.

    ``request_id`` travels with the call (Asterisk: the ``COMMHUB_CALL_ID``
    channel variable) so the call that results is tied to the request.
    """

    request_id: str
    extension: str
    number: str
    display_name: str = ""


class SendRejected(ChannelError):
    """The server refused a message for good (unknown recipient, policy); the message is why."""


@dataclass(frozen=True, slots=True)
class OutboundEmail:
    """A message the core has built, to hand to the mail server exactly as it is.

    ``sender`` and ``recipients`` are the SMTP envelope (MAIL FROM, RCPT TO);
    ``raw`` already holds every header. ``key`` is the outbox row's key, for
    the adapter's logs.
    """

    key: str
    sender: str
    recipients: tuple[str, ...]
    raw: bytes


@dataclass(frozen=True, slots=True)
class SendResult:
    """The server took the message: its answer (e.g. ``250 2.0.0 Ok: queued as 4Xz``)."""

    reply: str
    accepted_at: datetime
    refused: Mapping[str, str] = field(default_factory=dict)
    """Recipients the server refused while accepting the others, with its reason."""


@dataclass(frozen=True, slots=True)
class OutboundSms:
    """An SMS to hand to a gateway: already checked against opt-outs, counted and timed.

    ``key`` is the outbox row's key: a gateway that takes an idempotency key
    gets it, and a log line names it.
    """

    key: str
    sender: str
    """Our number (E.164) or alphanumeric sender id; empty: the gateway's default."""
    recipient: str
    """E.164."""
    text: str


@dataclass(frozen=True, slots=True)
class SmsAccepted:
    """The gateway took the message: its id for each part it will report on."""

    gateway_ids: tuple[str, ...]
    accepted_at: datetime
    state: DeliveryState = DeliveryState.SENT
    """``queued`` where the gateway only queued it (Twilio's first answer)."""


class SendThrottled(ChannelUnavailable):
    """The gateway asked us to slow down; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """An HTTP request a gateway made to ``/hooks/{channel}/{path}``, read whole.

    ``url`` is the URL the gateway called: built from the hub's public base
    URL where one is configured (behind a TLS proxy the request itself shows
    the proxy's hop), else as the request arrived. Signatures are checked on it.
    """

    method: str
    url: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    form: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    status: int = 200
    body: str = ""
    content_type: str = "text/plain"


class WebhookRefused(ChannelError):
    """A webhook request is not the gateway's (bad signature or secret): 403, logged."""


class WebhookInvalid(ChannelError):
    """A webhook request is the gateway's but cannot be read (a field missing): 400."""


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """What an admin sees of a channel: is it connected, when did it last hear anything."""

    name: str
    kind: str
    connected: bool
    last_event_at: datetime | None = None
    connected_since: datetime | None = None
    disconnected_since: datetime | None = None
    reconnects: int = 0
    """Times the link came back after a drop (successful reconnects)."""
    failed_attempts: int = 0
    """Connection or login attempts that failed."""
    error: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    """One outside system the hub listens to."""

    @property
    def name(self) -> str: ...

    async def start(self, sink: EventSink) -> None:
        """Connect (and keep reconnecting) in the background; return at once."""

    async def stop(self) -> None:
        """Disconnect and finish what is in flight."""

    def health(self) -> ChannelHealth: ...


@runtime_checkable
class Telephony(Channel, Protocol):
    """A PBX: a channel that can also place calls."""

    async def originate(self, call: OriginateCall) -> None:
        """Ask the PBX to place ``call``; returns once the PBX has queued it.

        Raises :class:`ChannelUnavailable` when the PBX is not connected and
        :class:`OriginateRejected` when it refuses.
        """

    def serves(self, extension: str, *, explicitly: bool = False) -> bool:
        """True when this PBX rings that extension; a PBX that declares no extensions serves any.

        With ``explicitly``, true only when the PBX declares the extensions it
        serves and ``extension`` is one of them: with several PBXs, the one
        that names an operator's extension is chosen over one that takes any.
        """


@runtime_checkable
class Mailbox(Channel, Protocol):
    """A mailbox the hub can send from (and, when it watches folders, read)."""

    @property
    def address(self) -> str:
        """The mailbox's own address: the From of what it sends."""

    @property
    def display_name(self) -> str: ...

    @property
    def max_message_bytes(self) -> int:
        """The largest message it sends or imports whole."""

    @property
    def window(self) -> int:
        """How many messages it may have in flight at once (its SMTP connections)."""

    async def send(self, message: OutboundEmail) -> SendResult:
        """Hand ``message`` to the mail server.

        Raises :class:`SendRejected` when the server refuses it for good and
        :class:`ChannelUnavailable` for what a later try may cure (server
        down, 4xx answers).
        """


@runtime_checkable
class SmsGateway(Channel, Protocol):
    """A gateway that sends and receives SMS."""

    @property
    def numbers(self) -> tuple[str, ...]:
        """Our numbers (E.164) and sender ids it sends from; the first is its default."""

    @property
    def purposes(self) -> frozenset[str]:
        """What the admin chose it for (``transactional``, ``marketing``); empty: anything."""

    @property
    def rate(self) -> float:
        """Messages per second the core may hand it (the gateway's or the contract's limit)."""

    @property
    def window(self) -> int:
        """How many sends may be in flight at once (SMPP's window, an API's concurrency)."""

    async def send(self, message: OutboundSms) -> SmsAccepted:
        """Submit ``message``; returns once the gateway has taken it.

        Raises :class:`SendRejected` for what no retry cures (invalid number,
        blocked), :class:`SendThrottled` when the gateway asks us to slow
        down and :class:`ChannelUnavailable` for other temporary failures.
        """


@runtime_checkable
class SentLookup(Protocol):
    """An SMS gateway that can say whether it took a message (Twilio's message list).

    The core asks it about a message whose hand-over a crash cut off, so that
    it is neither sent twice nor lost.
    """

    async def find_sent(self, message: OutboundSms, *, since: datetime) -> SmsAccepted | None:
        """The gateway's record of ``message`` created at or after ``since``; ``None`` if none.

        ``None`` must mean the gateway surely has no such message. Raises
        :class:`ChannelUnavailable` when it cannot tell now.
        """


@runtime_checkable
class WebhookReceiver(Protocol):
    """A channel the outside system calls over HTTP (delivery reports, inbound SMS)."""

    async def webhook(self, request: WebhookRequest) -> WebhookResponse:
        """Check and read ``request``, pass its events to the sink, answer the gateway.

        Raises :class:`WebhookRefused` (403) or :class:`WebhookInvalid` (400).
        """


class EmailCursors(Protocol):
    """The core's record of how far each watched folder was imported."""

    async def cursor(self, source: str, folder: str) -> EmailCursor | None: ...


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What the hub tells an adapter it builds: hub-wide defaults, and the state it may read.

    ``email_cursors`` is ``None`` where the channel will only send (a worker
    process): such a process never watches mailboxes.
    """

    phone_region: str
    email_cursors: EmailCursors | None = None
    public_url: str | None = None
    """The hub's public base URL (``https://hub.example.com``): webhooks are built on it."""


class ChannelFactory(Protocol):
    """The object an adapter registers under the ``commhub.adapters`` entry point."""

    def __call__(
        self, *, name: str, options: Mapping[str, Any], context: ChannelContext
    ) -> Channel: ...
