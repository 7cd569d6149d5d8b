"""A loopback AMI server that plays recorded Asterisk sessions: the PBX in tests and benchmarks.

It speaks the part of the Asterisk Manager Interface the adapter uses — the
banner, ``Login``, ``Logoff``, ``Ping``, ``Originate`` (async, with a
scripted outcome) and ``CoreShowChannels`` — and after each successful login
plays the next :class:`Playback` of its script: recorded bytes as they are,
all at once or at their recorded pace, optionally dropping the link at the
end. A recording of a reconnect (``NAME.part2.ami``) holds the PBX's answer
to the client's ``CoreShowChannels``; that answer waits for the client's own
action and carries its ActionID, as Asterisk's would. Between connections
:class:`ChannelsUp` keeps what a real PBX knows, the channels still up, so a
call can go on, or end, while no client listens. Faults are injected here, in
the peer, never by patching the adapter.

Bind it to loopback only; it accepts any client that knows the secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from commhub_asterisk.recordings import Recording, split_blocks
from commhub_asterisk.wire import END

BANNER_LINE: Final = b"Asterisk Call Manager/11.0.0\r\n"
"""The AMI protocol version Asterisk 22 announces (the recordings' banner)."""

ACTION_ID: Final = re.compile(rb"^ActionID: [^\r\n]*", re.MULTILINE)
DURATION: Final = re.compile(rb"^Duration: (\d+:\d\d:\d\d)\r\n", re.MULTILINE)
CHANNELS_WAIT_S: Final = 5.0
"""How long a playback with a recorded channel list waits for the client to ask for one."""

Action = dict[str, str | list[str]]
"""An action as received: header → value, a list where a header repeats (``Variable``)."""
Chunks = tuple[tuple[float, bytes], ...]
"""(seconds after login, bytes) pairs."""


@dataclass(slots=True)
class Playback:
    """What the server sends after a login: bytes, paced or not, then maybe a hang-up.

    With ``channels_answer`` (a recorded answer to ``CoreShowChannels``) the
    playback sends ``data``/``chunks``, waits for the client's own
    ``CoreShowChannels``, answers it with the recorded block under the
    client's ActionID, then sends ``rest``. A client that does not ask within
    ``channels_wait_s`` gets ``rest`` without the block. Asked sooner or later
    than the recorded client asked, the PBX answers at once, its rows'
    ``Duration`` counted to that moment.

    Times count from the login. A test may place ``rest`` and the recorded
    answer on a timeline of its own with ``starts_at`` (part2 of a call some
    seconds after part1 began, however fast the client came back); what
    precedes the answer is about the connection and still follows the login.
    """

    data: bytes = b""
    chunks: Chunks = ()
    """(seconds after login, bytes) pairs; used instead of ``data`` when given."""
    close_at_end: bool = False
    channels_answer: bytes | None = None
    """A recorded ``CoreShowChannels`` answer: the response, the rows and the closing event."""
    channels_action_id: bytes = b""
    """The ActionID the recording's answer carries (replaced by the client's own)."""
    rest: Chunks = ()
    """What follows the channel list, timed from the login like ``chunks``."""
    channels_at: float = 0.0
    """When the recorded answer went out, in the same time as ``chunks``."""
    channels_wait_s: float = CHANNELS_WAIT_S
    starts_at: float | None = None
    """The event loop's time the recorded login happened at, for ``channels_at`` and
    ``rest``; ``None``: the login."""

    @classmethod
    def from_recording(
        cls,
        recording: Recording,
        *,
        paced: bool = False,
        speed: float = 1.0,
        close_at_end: bool = False,
    ) -> Playback:
        """The recording's events; ``paced`` keeps its timing, ``speed`` times faster.

        A recorded answer to ``CoreShowChannels`` in the body (a ``part2``
        recording) is kept apart, to be sent when the client asks.
        """
        body = recording.body
        found = channels_answer(body)
        start, end = found if found is not None else (len(body), len(body))
        answer = body[start:end] if found is not None else None
        action_id = _action_id(answer) if answer is not None else b""
        if not paced:
            return cls(
                data=body[:start],
                close_at_end=close_at_end,
                channels_answer=answer,
                channels_action_id=action_id,
                rest=((0.0, body[end:]),) if end < len(body) else (),
            )
        before: list[tuple[float, bytes]] = []
        after: list[tuple[float, bytes]] = []
        channels_at = 0.0
        for at, offset, data in _reads(recording):
            if offset < start:
                before.append((at / speed, data[: start - offset]))
            if offset <= start < offset + len(data):
                channels_at = at / speed
            if offset + len(data) > end:
                after.append((at / speed, data[max(0, end - offset) :]))
        return cls(
            chunks=tuple((at, data) for at, data in before if data),
            close_at_end=close_at_end,
            channels_answer=answer,
            channels_action_id=action_id,
            rest=tuple((at, data) for at, data in after if data),
            channels_at=channels_at,
        )

    def answer_for(self, action_id: str, *, late_by: float = 0.0) -> bytes:
        """The recorded channel list answering the client's action ``action_id``.

        ``late_by``: seconds after the recorded answer (negative: before it);
        each row's ``Duration`` (whole seconds since the channel was created)
        moves by as much. The rest of a row holds anywhere between the client's
        two connections: events in that gap went to nobody.
        """
        assert self.channels_answer is not None
        recorded = b"ActionID: " + self.channels_action_id + b"\r\n"
        own = b"ActionID: " + action_id.encode() + b"\r\n"
        answer = self.channels_answer.replace(recorded, own)
        if not late_by:
            return answer

        def moved(found: re.Match[bytes]) -> bytes:
            age = max(0, int(_seconds(found[1].decode()) + late_by))
            return b"Duration: " + _hms(age).encode() + b"\r\n"

        return DURATION.sub(moved, answer)


def channels_answer(body: bytes) -> tuple[int, int] | None:
    """Where a recorded answer to ``CoreShowChannels`` sits in ``body``: (start, end) offsets.

    The answer is the ``Response`` with ``EventList: start`` that carries the
    same ActionID as the first ``CoreShowChannelsComplete``, up to the end of
    that event (Asterisk's manager_channels.c sends the rows in between).
    """
    complete = body.find(b"Event: CoreShowChannelsComplete\r\n")
    if complete < 0:
        return None
    end = body.find(END, complete)
    if end < 0:
        return None
    action_id = _action_id(body[complete:end])
    start = body.rfind(b"Response: Success\r\nActionID: " + action_id + b"\r\n", 0, complete)
    if start < 0 or b"\r\nEventList: start\r\n" not in body[start : body.find(END, start) + 2]:
        return None
    return start, end + len(END)


def _action_id(message: bytes) -> bytes:
    found = re.search(rb"^ActionID: (.*?)\r?$", message, re.MULTILINE)
    return found[1] if found else b""


def _reads(recording: Recording) -> Iterator[tuple[float, int, bytes]]:
    """The body as it was read: (seconds since the first body byte, body offset, bytes)."""
    offset = 0
    for at, data in recording.paced_body():
        yield at, offset, data
        offset += len(data)


@dataclass(eq=False, slots=True)
class _Client:
    writer: asyncio.StreamWriter
    logged_in: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    asked_channels: asyncio.Future[str] | None = None
    """Set while a playback waits for this client's ``CoreShowChannels``: its ActionID."""

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)


class AmiReplayServer:
    """An AMI peer on 127.0.0.1 replaying recorded streams to whoever logs in."""

    def __init__(self, *, username: str, secret: str, host: str = "127.0.0.1") -> None:
        self.username = username
        self.secret = secret
        self.host = host
        self.port = 0
        self.script: list[Playback] = []
        """Played one per successful login, in order; later logins get nothing."""
        self.channels: list[Mapping[str, str]] | None = None
        """What ``CoreShowChannels`` reports as up; ``None``: the channels the events
        sent so far left up (created, not hung up), as a real PBX would."""
        self.up = ChannelsUp()
        self.on_originate: bytes | None = None
        """Events to play after accepting an ``Originate`` (a recorded call); its
        responses are dropped and its ``ActionID`` becomes the action's own."""
        self.denied: set[str] = set()
        """Actions answered "Permission denied", as for an AMI user without the right."""
        self.reject_originate: str | None = None
        """When set, ``Originate`` is refused with this message."""
        self.actions: list[Action] = []
        self.logins = 0
        self.login_times: list[float] = []
        """The event loop's time of each accepted login, in order."""
        self.recorded_lists_sent = 0
        """How many recorded ``CoreShowChannels`` answers went to a client that asked."""
        self._server: asyncio.Server | None = None
        self._clients: set[_Client] = set()
        self._changed = asyncio.Condition()
        self._logins_open = asyncio.Event()
        self._logins_open.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and hang up on every client (the PBX went away)."""
        if self._server is not None:
            self._server.close()
        for client in list(self._clients):
            self._hang_up(client)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def send(self, data: bytes) -> None:
        """Send bytes to every logged-in client now; with none, the calls still happen."""
        self.up.follow(data)
        for client in list(self._clients):
            if client.logged_in:
                client.write(data)
                with contextlib.suppress(ConnectionError):
                    await client.writer.drain()

    async def play(self, playback: Playback) -> None:
        """Play ``playback`` to every logged-in client at its pace, timed from this call
        (its ``rest`` from its ``starts_at`` when set).

        With no client the calls still happen: :attr:`up` follows them, so a
        client logging in later is told what is still up. Nobody asked for
        the playback's recorded channel list, so it is not sent.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        timeline = now if playback.starts_at is None else playback.starts_at
        before = ((now + at, data) for at, data in playback.chunks or ((0.0, playback.data),))
        for due, data in (*before, *((timeline + at, data) for at, data in playback.rest)):
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.send(data)
        if playback.close_at_end:
            for client in list(self._clients):
                self._hang_up(client)

    def hold_logins(self) -> None:
        """Leave logins unanswered until :meth:`release_logins` (a PBX slow to accept)."""
        self._logins_open.clear()

    def release_logins(self) -> None:
        self._logins_open.set()

    async def wait_logins(self, count: int, *, timeout: float = 5.0) -> None:
        """Wait until ``count`` logins in all have succeeded."""
        await self._wait(lambda: self.logins >= count, timeout)

    async def wait_recorded_lists(self, count: int, *, timeout: float = 5.0) -> None:
        """Wait until ``count`` recorded channel lists in all went to clients that asked."""
        await self._wait(lambda: self.recorded_lists_sent >= count, timeout)

    async def wait_for_action(self, name: str, *, timeout: float = 5.0) -> Action:
        """The first action named ``name`` received, waiting for it if need be."""

        def found() -> Action | None:
            return next((a for a in self.actions if a.get("Action") == name), None)

        await self._wait(lambda: found() is not None, timeout)
        action = found()
        assert action is not None
        return action

    async def _wait(self, ready: Callable[[], bool], timeout: float) -> None:
        async def poll() -> None:
            async with self._changed:
                await self._changed.wait_for(ready)

        await asyncio.wait_for(poll(), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- one connection -------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _Client(writer=writer)
        self._clients.add(client)
        try:
            client.write(BANNER_LINE)
            while True:
                try:
                    message = await reader.readuntil(END)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
                    return
                action = parse_action(message)
                if action:
                    self.actions.append(action)
                    await self._notify()
                    if not await self._answer(client, action):
                        return
        finally:
            self._clients.discard(client)
            for task in client.tasks:
                task.cancel()
            self._hang_up(client)

    async def _answer(self, client: _Client, action: Action) -> bool:
        """Reply to one action; ``False`` when the connection ends."""
        name = str(action.get("Action", "")).lower()
        action_id = str(action.get("ActionID", ""))
        if name == "login":
            return await self._login(client, action, action_id)
        if not client.logged_in or name in {d.lower() for d in self.denied}:
            client.write(_response("Error", action_id, Message="Permission denied"))
            return True
        if name == "logoff":
            client.write(_response("Goodbye", action_id, Message="Thanks for all the fish."))
            return False
        if name == "ping":
            client.write(_response("Success", action_id, Ping="Pong"))
        elif name == "originate":
            self._originate(client, action_id)
        elif name == "coreshowchannels":
            asked = client.asked_channels
            if asked is not None and not asked.done():
                asked.set_result(action_id)  # the playback answers with its recorded list
            else:
                client.write(self._channel_list(action_id))
        else:
            client.write(_response("Error", action_id, Message="Invalid/unknown command"))
        return True

    async def _login(self, client: _Client, action: Action, action_id: str) -> bool:
        if action.get("Username") != self.username or action.get("Secret") != self.secret:
            # Asterisk answers a failed login and then closes the session (manager.c).
            client.write(_response("Error", action_id, Message="Authentication failed"))
            await client.writer.drain()
            return False
        await self._logins_open.wait()
        client.logged_in = True
        client.write(_response("Success", action_id, Message="Authentication accepted"))
        self.logins += 1
        self.login_times.append(asyncio.get_running_loop().time())
        await self._notify()
        if self.script:
            self._play(client, self.script.pop(0))
        return True

    def _originate(self, client: _Client, action_id: str) -> None:
        if self.reject_originate is not None:
            client.write(_response("Error", action_id, Message=self.reject_originate))
            return
        client.write(_response("Success", action_id, Message="Originate successfully queued"))
        if self.on_originate is not None:
            events = [b for b in split_blocks(self.on_originate) if b.startswith(b"Event: ")]
            own_id = b"ActionID: " + action_id.encode()
            data = b"".join(ACTION_ID.sub(lambda _: own_id, block) for block in events)
            self._play(client, Playback(data=data))

    def _channel_list(self, action_id: str) -> bytes:
        channels = self.up.channels() if self.channels is None else self.channels
        parts = [_response("Success", action_id, EventList="start", Message="Channels will follow")]
        parts += [
            _message({"Event": "CoreShowChannel", "ActionID": action_id, **channel})
            for channel in channels
        ]
        parts.append(
            _message(
                {
                    "Event": "CoreShowChannelsComplete",
                    "ActionID": action_id,
                    "EventList": "Complete",
                    "ListItems": str(len(channels)),
                }
            )
        )
        return b"".join(parts)

    def _play(self, client: _Client, playback: Playback) -> None:
        if playback.channels_answer is not None:
            # Before the task runs: the client may ask as soon as it reads the login answer.
            client.asked_channels = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._playing(client, playback))
        client.tasks.add(task)
        task.add_done_callback(client.tasks.discard)

    async def _playing(self, client: _Client, playback: Playback) -> None:
        loop = asyncio.get_running_loop()
        logged_in = loop.time()
        timeline = logged_in if playback.starts_at is None else playback.starts_at
        await self._send_paced(client, playback.chunks or ((0.0, playback.data),), logged_in)
        asked = client.asked_channels
        if playback.channels_answer is not None and asked is not None:
            try:
                action_id = await asyncio.wait_for(asyncio.shield(asked), playback.channels_wait_s)
            except TimeoutError:
                asked.cancel()  # a later CoreShowChannels gets the list of what is up
            else:
                late_by = loop.time() - (timeline + playback.channels_at)
                answer = playback.answer_for(action_id, late_by=late_by)
                self.up.follow(answer)
                client.write(answer)
                self.recorded_lists_sent += 1
                await self._notify()
        await self._send_paced(client, playback.rest, timeline)
        if playback.close_at_end:
            self._hang_up(client)

    async def _send_paced(
        self, client: _Client, chunks: Iterable[tuple[float, bytes]], started: float
    ) -> None:
        loop = asyncio.get_running_loop()
        for at, data in chunks:
            delay = started + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.up.follow(data)
            client.write(data)
            with contextlib.suppress(ConnectionError):
                await client.writer.drain()

    def _hang_up(self, client: _Client) -> None:
        client.logged_in = False
        if not client.writer.is_closing():
            client.writer.close()


class ChannelsUp:
    """The channels a stream of events leaves up: what ``CoreShowChannels`` answers.

    Each row has the headers of a real ``CoreShowChannel`` row (Asterisk 22's
    manager_channels.c): the channel snapshot that every channel event carries
    (state, caller and connected line, dialplan location with the DID in
    ``Exten``), the application from ``Newexten``, ``BridgeId`` while bridged
    and ``Duration`` since the channel was created. A recorded list the
    server sends replaces what it says of each channel it lists.

    Reads only the events that create, change or end a channel, so following
    a benchmark's megabytes costs little.
    """

    SNAPSHOT: Final = (
        "Channel",
        "ChannelState",
        "ChannelStateDesc",
        "CallerIDNum",
        "CallerIDName",
        "ConnectedLineNum",
        "ConnectedLineName",
        "Language",
        "AccountCode",
        "Context",
        "Exten",
        "Priority",
        "Uniqueid",
        "Linkedid",
    )
    """The channel snapshot headers of a channel event, in a row's order."""
    ROW: Final = (*SNAPSHOT, "Application", "ApplicationData")
    """A row's headers before ``Duration`` and ``BridgeId``."""

    _WATCHED = (
        b"Event: Newchannel\r\n",
        b"Event: NewCallerid\r\n",
        b"Event: NewConnectedLine\r\n",
        b"Event: Newstate\r\n",
        b"Event: Newexten\r\n",
        b"Event: Rename\r\n",
        b"Event: Hangup\r\n",
        b"Event: BridgeEnter\r\n",
        b"Event: BridgeLeave\r\n",
        b"Event: CoreShowChannel\r\n",
    )

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._up: dict[str, dict[str, str]] = {}
        self._created: dict[str, float] = {}
        self._pending = b""
        self._clock = clock or time.monotonic

    def follow(self, data: bytes) -> None:
        blocks = (self._pending + data).split(END)
        self._pending = blocks.pop()
        for block in blocks:
            block = block.lstrip(b"\r\n") + b"\r\n"
            if block.startswith(self._WATCHED):
                self._apply(parse_action(block))

    def channels(self) -> list[dict[str, str]]:
        now = self._clock()
        rows = []
        for uniqueid, row in self._up.items():
            shown = {key: row.get(key, "") for key in self.ROW}
            shown["Duration"] = _hms(max(0, int(now - self._created[uniqueid])))
            shown["BridgeId"] = row.get("BridgeId", "")
            rows.append(shown)
        return rows

    def _apply(self, event: Action) -> None:
        uniqueid = str(event.get("Uniqueid", ""))
        name = event.get("Event")
        if name == "Hangup":
            self._up.pop(uniqueid, None)
            self._created.pop(uniqueid, None)
            return
        if name == "CoreShowChannel":
            self._listed(uniqueid, event)
            return
        if name == "Newchannel":
            self._up[uniqueid] = {}
            self._created[uniqueid] = self._clock()
        row = self._up.get(uniqueid)
        if row is None:
            return
        row.update({key: str(event[key]) for key in self.SNAPSHOT if key in event})
        if name == "Newexten":
            row["Application"] = str(event.get("Application", ""))
            row["ApplicationData"] = str(event.get("AppData", ""))
        elif name == "Rename":
            row["Channel"] = str(event.get("Newname", row.get("Channel", "")))
        elif name == "BridgeEnter":
            row["BridgeId"] = str(event.get("BridgeUniqueid", ""))
        elif name == "BridgeLeave":
            row["BridgeId"] = ""

    def _listed(self, uniqueid: str, row: Action) -> None:
        """A row of a recorded list: the PBX said so at that moment."""
        fields = {k: str(v) for k, v in row.items() if k not in ("Event", "ActionID", "Duration")}
        self._up[uniqueid] = fields
        self._created[uniqueid] = self._clock() - _seconds(str(row.get("Duration", "")))


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02}:{seconds // 60 % 60:02}:{seconds % 60:02}"


def _seconds(duration: str) -> int:
    """``HH:MM:SS`` as seconds; 0 when unreadable."""
    try:
        hours, minutes, seconds = (int(part) for part in duration.split(":"))
    except ValueError:
        return 0
    return hours * 3600 + minutes * 60 + seconds


def parse_action(message: bytes) -> Action:
    """An action's headers; a repeated header (``Variable``) becomes a list."""
    action: Action = {}
    for line in message.decode("utf-8", "replace").split("\r\n"):
        key, separator, value = line.partition(": ")
        if not separator:
            continue
        if key in action:
            previous = action[key]
            action[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            action[key] = value
    return action


def _message(headers: Mapping[str, str]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"


def _response(status: str, action_id: str, **headers: str) -> bytes:
    return _message({"Response": status, "ActionID": action_id, **headers})
