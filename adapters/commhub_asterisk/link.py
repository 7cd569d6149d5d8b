"""The AMI link to one Asterisk: connect, log in, follow calls, reconnect, originate.

panoramisk's protocol carries the actions and their responses; its event
path is replaced by :class:`~commhub_asterisk.wire.MessageReader`, which skips
the events calls do not need before decoding them. The socket reader only
cuts bytes and puts events into a bounded queue; a separate task runs the
call tracker and hands snapshots to the core's sink, which never waits on
the database. So a slow database cannot make Asterisk's write time out and
drop us.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from commhub.adapter_kit import Backoff, describe
from commhub.channels import (
    ChannelHealth,
    ChannelUnavailable,
    EventSink,
    InboundEvent,
    OriginateCall,
    OriginateRejected,
)
from commhub_asterisk.config import PbxSettings
from commhub_asterisk.dialplan import Dialplan
from commhub_asterisk.tracker import CallTracker
from commhub_asterisk.wire import Headers, MessageReader, parse_headers

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 0.5
HEARTBEAT_S = 2.0
"""How often the link vouches for every call it follows (one row per PBX in the log), so the
end of a call a crash hid is known to within this."""
ACTION_TIMEOUT_S = 10.0
LIST_TIMEOUT_S = 10.0
"""How long a channel list may take to complete before it is read as incomplete."""
STABLE_AFTER_S = 30.0
"""A session that lasted this long resets the reconnect backoff."""
CHANNELS_LISTED: Final = "CoreShowChannelsComplete"
LISTED_CHANNEL: Final = b"Event: CoreShowChannel\r\n"
LIST_COMPLETE: Final = b"Event: CoreShowChannelsComplete\r\n"


class LoginRefused(Exception):
    pass


class _Protocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's AMI protocol with our event path and a future for the end of the link."""

    closed: bool

    def __init__(self, link: AmiChannel) -> None:
        super().__init__()
        self.link = link
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.reader = MessageReader(on_event=link.received, on_other=self._other)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.factory = self.link
        self.encoding = "utf-8"

    def data_received(self, data: bytes) -> None:
        self.link.now = datetime.now(UTC)
        self.reader.feed(data)

    def _other(self, raw: bytes) -> None:
        # Events go to every AMI connection: a list another client (or an earlier
        # connection of ours) asked for is not ours to act on.
        if raw.startswith(LISTED_CHANNEL):
            action_id = _action_id(raw)
            if action_id in self.link.asked:
                self.link.listed.setdefault(action_id, []).append(parse_headers(raw))
        elif raw.startswith(LIST_COMPLETE):
            action_id = _action_id(raw)
            done = self.link.asked.pop(action_id, None)
            if done is not None:
                done.set()
                # In the event queue at its place in the stream: the tracker compares the
                # list with what it knew at that moment, not with events read after it.
                self.link.received(CHANNELS_LISTED, {"ActionID": action_id})
        message = Message.from_line(raw.decode("utf-8", "replace").strip())
        if message is not None:
            self.handle_message(message)

    def connection_lost(self, exc: Exception | None) -> None:
        for action in list(self.responses.values()):
            if not action.future.done():
                action.future.set_exception(ChannelUnavailable("the PBX link dropped"))
        self.responses.clear()
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self.transport.close()
        if not self.lost.done():
            self.lost.set_result(exc)


class AmiChannel:
    """One PBX: the :class:`~commhub.channels.Telephony` port over AMI."""

    kind = "asterisk"

    def __init__(self, *, name: str, settings: PbxSettings, region: str) -> None:
        self._name = name
        self.settings = settings
        self.dialplan = Dialplan(settings, region=region)
        self.tracker = CallTracker(
            source=f"asterisk:{name}",
            pbx=name,
            dialplan=self.dialplan,
            cdr=settings.cdr,
            cdr_wait_s=settings.cdr_wait_s,
        )
        self.now = datetime.now(UTC)
        self._queue: asyncio.Queue[tuple[str, Headers, datetime]] = asyncio.Queue(
            maxsize=settings.queue_size
        )
        self._sink: EventSink | None = None
        self._protocol: _Protocol | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._action_ids = itertools.count(1)
        self._sessions = 0
        self._logged_in = False
        self._vouching = False
        self.reconnects = 0
        """Successful logins after the first one."""
        self.failed_attempts = 0
        """Connects or logins that failed."""
        self.connected_since: datetime | None = None
        self.disconnected_since: datetime | None = datetime.now(UTC)
        self.last_event_at: datetime | None = None
        self.lost_at: datetime | None = None
        self.gap_since: datetime | None = None
        """Since when the tracker may have missed events (a drop, a full queue), until the
        PBX's channel list has been read."""
        self.asked: dict[str, asyncio.Event] = {}
        """Our own CoreShowChannels requests whose list is not complete yet."""
        self.error: str | None = None
        self.dropped = 0
        self.listed: dict[str, list[Headers]] = {}
        """``CoreShowChannel`` events by ActionID, until their list is complete."""
        # What panoramisk's protocol asks of its factory.
        self.forgetable_actions: tuple[str, ...] = (
            "ping",
            "login",
            "originate",
            "coreshowchannels",
            "logoff",
        )
        self.awaiting_actions: deque[Any] = deque()

    @property
    def name(self) -> str:
        return self._name

    # --- the port -------------------------------------------------------------------------

    async def start(self, sink: EventSink) -> None:
        self._sink = sink
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._run(), name=f"ami {self._name}"),
            asyncio.create_task(self._track(), name=f"ami {self._name} tracker"),
            asyncio.create_task(self._sweep(), name=f"ami {self._name} sweep"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            with contextlib.suppress(ChannelUnavailable, TimeoutError):
                await asyncio.wait_for(self._send({"Action": "Logoff"}), 1.0)
            protocol.connection_lost(None)
        await self.drained()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def drained(self) -> None:
        """Wait until every event read so far went through the tracker (tests, benchmarks)."""
        while self._queue.qsize():
            await asyncio.sleep(0.001)
        await asyncio.sleep(0)

    def health(self) -> ChannelHealth:
        return ChannelHealth(
            name=self._name,
            kind=self.kind,
            connected=self.connected_since is not None,
            last_event_at=self.last_event_at,
            connected_since=self.connected_since,
            disconnected_since=self.disconnected_since,
            reconnects=self.reconnects,
            failed_attempts=self.failed_attempts,
            error=self.error,
            detail={
                "host": self.settings.host,
                "port": self.settings.port,
                "followed_calls": self.tracker.active_calls,
                "queued_events": self._queue.qsize(),
                "dropped_events": self.dropped,
                "malformed_messages": self._protocol.reader.malformed if self._protocol else 0,
            },
        )

    async def originate(self, call: OriginateCall) -> None:
        if self.connected_since is None:
            raise ChannelUnavailable(f"PBX {self._name} is not connected")
        action_id = f"c2c-{next(self._action_ids)}"
        number = self.dialplan.dial_string(call.number)
        display = _clean(call.display_name)[:60] or number
        self.tracker.expect_originate(action_id, call.request_id, call.extension, call.number)
        response = await self._send(
            {
                "Action": "Originate",
                "ActionID": action_id,
                "Channel": self.settings.originate_channel.format(extension=call.extension),
                "Context": self.settings.originate_context,
                "Exten": number,
                "Priority": "1",
                "Timeout": str(self.settings.originate_timeout_s * 1000),
                "CallerID": f'"{display}" <{number}>',
                "Async": "true",
                "Variable": [f"__COMMHUB_CALL_ID={_clean(call.request_id)}"],
            }
        )
        if not response.success:
            self.tracker.originates.pop(action_id, None)
            raise OriginateRejected(response.message or "the PBX refused the call")

    def serves(self, extension: str, *, explicitly: bool = False) -> bool:
        return self.dialplan.serves(extension, explicitly=explicitly)

    # --- reading ------------------------------------------------------------------------------

    def received(self, name: str, headers: Headers) -> None:
        """Called by the socket reader for each wanted event: queue it, never wait."""
        try:
            self._queue.put_nowait((name, headers, self.now))
        except asyncio.QueueFull:
            self.gap_since = self.gap_since or self.now
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("PBX %s: event queue full, %d events dropped", self._name, self.dropped)

    def dispatch(self, message: Message) -> None:
        """panoramisk hands us events that answer no action of ours: the reader saw them already."""

    def connection_lost(self, exc: Exception | None) -> None:
        """panoramisk's protocol reports the end of the link here; :meth:`_run` handles it."""

    async def _track(self) -> None:
        queue, tracker, sink = self._queue, self.tracker, self._sink
        assert sink is not None
        while True:
            name, headers, at = await queue.get()
            self._apply(self._step(tracker, name, headers, at), sink)
            for _ in range(queue.qsize()):
                name, headers, at = queue.get_nowait()
                self._apply(self._step(tracker, name, headers, at), sink)
            self.last_event_at = at

    def _step(
        self, tracker: CallTracker, name: str, headers: Headers, at: datetime
    ) -> list[InboundEvent]:
        if name != CHANNELS_LISTED:
            return tracker.handle(name, headers, at)
        channels = self.listed.pop(headers["ActionID"], [])
        complete = headers.get("Incomplete") != "yes"
        events = tracker.reconcile(channels, at, lost_at=self.gap_since, complete=complete)
        if complete:
            self.gap_since = None
            self._vouching = True
        return events

    @staticmethod
    def _apply(events: Iterable[Any], sink: EventSink) -> None:
        for event in events:
            sink(event)

    async def _sweep(self) -> None:
        """Close calls whose CDR wait is over; re-read the PBX's channels after lost events."""
        assert self._sink is not None
        healed = 0
        beat = datetime.now(UTC)
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            now = datetime.now(UTC)
            self._apply(self.tracker.sweep(now), self._sink)
            if (now - beat).total_seconds() >= HEARTBEAT_S:
                beat = now
                # Only while the tracker follows every call of the PBX: after its own list
                # was read, with no event lost since.
                vouching = self._vouching and self.gap_since is None
                if vouching and self.connected_since is not None and self.tracker.active_calls:
                    self._sink(self.tracker.in_progress(now))
            protocol = self._protocol
            if self.dropped != healed and protocol is not None and not protocol.closed:
                # A dropped Hangup would leave a call open for ever: ask Asterisk what is up.
                healed = self.dropped
                with contextlib.suppress(ChannelUnavailable):
                    await self._reconcile(protocol)

    # --- the link -------------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(1.0, self.settings.reconnect_max_s, stable_after_s=STABLE_AFTER_S)
        while not self._stopping:
            backoff.attempt()
            try:
                await self._session()
            except LoginRefused as exc:
                self.error = f"login refused: {exc}"
                log.error("PBX %s: %s", self._name, self.error)
            except (OSError, TimeoutError, ChannelUnavailable) as exc:
                self.error = describe(exc)
                log.warning(
                    "PBX %s at %s:%d: %s",
                    self._name,
                    self.settings.host,
                    self.settings.port,
                    self.error,
                )
            except Exception as exc:
                # Whatever went wrong, the link reconnects rather than falling silent.
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("PBX %s: the link failed", self._name)
            if self.connected_since is None:
                self.failed_attempts += 1
            self._disconnected()
            if self._stopping:
                return
            pause = backoff.pause()
            log.info("PBX %s: reconnecting in %.1fs", self._name, pause)
            await asyncio.sleep(pause)

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        protocol = _Protocol(self)
        await asyncio.wait_for(
            loop.create_connection(lambda: protocol, self.settings.host, self.settings.port),
            self.settings.connect_timeout_s,
        )
        self._protocol = protocol
        self._sessions += 1
        response = await self._send(
            {
                "Action": "Login",
                "ActionID": f"login-{self._sessions}",
                "Username": self.settings.username,
                "Secret": self.settings.secret.get_secret_value(),
                "Events": "on",
            },
            protocol=protocol,
        )
        if not response.success:
            protocol.connection_lost(None)
            raise LoginRefused(response.message or "no reason given")
        self.connected_since = datetime.now(UTC)
        self.disconnected_since = None
        if self._logged_in:
            self.reconnects += 1
        self._logged_in = True
        self.error = None
        log.info("PBX %s: connected to %s:%d", self._name, self.settings.host, self.settings.port)
        await self._reconcile(protocol)
        await protocol.lost

    def _disconnected(self) -> None:
        self._vouching = False
        if self.connected_since is not None:
            self.lost_at = datetime.now(UTC)
            self.disconnected_since = self.lost_at
            # Last heard from the PBX: calls gone when we are back ended after this.
            self.gap_since = self.gap_since or self.last_event_at or self.lost_at
            if self._stopping:
                log.info("PBX %s: disconnected", self._name)
            else:
                log.warning("PBX %s: link lost", self._name)
        self.connected_since = None

    async def _reconcile(self, protocol: _Protocol) -> None:
        """Ask which channels are up, so the tracker settles calls that spanned a drop.

        The list arrives as events; the tracker takes it at its place in the
        stream (see ``_Protocol._other``). An AMI user without ``write =
        reporting`` is refused: said once per connect, and the link goes on.
        """
        action_id = f"channels-{next(self._action_ids)}"
        done = self.asked[action_id] = asyncio.Event()
        try:
            response = await self._send(
                {"Action": "CoreShowChannels", "ActionID": action_id}, protocol=protocol
            )
        except BaseException:
            self.asked.pop(action_id, None)
            raise
        if not response.success:
            self.asked.pop(action_id, None)
            log.warning(
                "PBX %s refused CoreShowChannels (%s): calls that spanned a link drop cannot "
                "be checked; give the AMI user 'write = reporting'",
                self._name,
                response.message or "no reason given",
            )
            return
        try:
            await asyncio.wait_for(done.wait(), LIST_TIMEOUT_S)
        except TimeoutError:
            if self.asked.pop(action_id, None) is None:
                return
            # What was listed adds to what we know; ending calls needs the whole list.
            self.error = "the PBX did not finish its channel list (CoreShowChannelsComplete)"
            log.warning("PBX %s: %s in %.0fs", self._name, self.error, LIST_TIMEOUT_S)
            self.received(CHANNELS_LISTED, {"ActionID": action_id, "Incomplete": "yes"})

    async def _send(
        self, fields: dict[str, Any], *, protocol: _Protocol | None = None, as_list: bool = False
    ) -> Any:
        protocol = protocol or self._protocol
        if protocol is None or protocol.closed:
            raise ChannelUnavailable(f"PBX {self._name} is not connected")
        action = Action(fields, as_list=as_list)
        future = protocol.send(action, as_list=as_list)
        try:
            return await asyncio.wait_for(future, ACTION_TIMEOUT_S)
        except TimeoutError:
            raise ChannelUnavailable(
                f"PBX {self._name} did not answer {fields['Action']} in {ACTION_TIMEOUT_S:.0f}s"
            ) from None


def _action_id(raw: bytes) -> str:
    _, found, rest = raw.partition(b"\r\nActionID: ")
    return rest.split(b"\r\n", 1)[0].decode("utf-8", "replace") if found else ""


def _clean(value: str) -> str:
    """A value safe inside an AMI header: no CR/LF (they would start a new header)."""
    return "".join(ch for ch in value if ch not in "\r\n\0").replace('"', "")
