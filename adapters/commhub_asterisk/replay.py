"""A loopback AMI server that plays recorded Asterisk sessions: the PBX in tests and benchmarks.

It speaks the part of the Asterisk Manager Interface the adapter uses — the
banner, ``Login``, ``Logoff``, ``Ping``, ``Originate`` (async, with a
scripted outcome) and ``CoreShowChannels`` — and after each successful login
plays the next :class:`Playback` of its script: recorded bytes as they are,
all at once or at their recorded pace, optionally dropping the link at the
end. Faults are injected here, in the peer, never by patching the adapter.

Bind it to loopback only; it accepts any client that knows the secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from commhub_asterisk.recordings import Recording, split_blocks
from commhub_asterisk.wire import END

BANNER_LINE: Final = b"Asterisk Call Manager/11.0.0\r\n"
"""The AMI protocol version Asterisk 22 announces (the recordings' banner)."""

ACTION_ID: Final = re.compile(rb"^ActionID: .*$", re.MULTILINE)

Action = dict[str, str | list[str]]
"""An action as received: header → value, a list where a header repeats (``Variable``)."""


@dataclass(slots=True)
class Playback:
    """What the server sends after a login: bytes, paced or not, then maybe a hang-up."""

    data: bytes = b""
    chunks: tuple[tuple[float, bytes], ...] = ()
    """(seconds after login, bytes) pairs; used instead of ``data`` when given."""
    close_at_end: bool = False

    @classmethod
    def from_recording(
        cls,
        recording: Recording,
        *,
        paced: bool = False,
        speed: float = 1.0,
        close_at_end: bool = False,
    ) -> Playback:
        """The recording's events; ``paced`` keeps its timing, ``speed`` times faster."""
        if not paced:
            return cls(data=recording.body, close_at_end=close_at_end)
        chunks = tuple((at / speed, data) for at, data in recording.paced_body())
        return cls(chunks=chunks, close_at_end=close_at_end)


@dataclass(eq=False, slots=True)
class _Client:
    writer: asyncio.StreamWriter
    logged_in: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

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
        self._server: asyncio.Server | None = None
        self._clients: set[_Client] = set()
        self._changed = asyncio.Condition()

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
        for client in self._clients:
            if client.logged_in:
                client.write(data)
                await client.writer.drain()

    async def wait_logins(self, count: int, *, timeout: float = 5.0) -> None:
        """Wait until ``count`` logins in all have succeeded."""
        await self._wait(lambda: self.logins >= count, timeout)

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
        client.logged_in = True
        client.write(_response("Success", action_id, Message="Authentication accepted"))
        self.logins += 1
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
        task = asyncio.create_task(self._playing(client, playback))
        client.tasks.add(task)
        task.add_done_callback(client.tasks.discard)

    async def _playing(self, client: _Client, playback: Playback) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        chunks: Iterable[tuple[float, bytes]] = playback.chunks or ((0.0, playback.data),)
        for at, data in chunks:
            delay = started + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.up.follow(data)
            client.write(data)
            with contextlib.suppress(ConnectionError):
                await client.writer.drain()
        if playback.close_at_end:
            self._hang_up(client)

    def _hang_up(self, client: _Client) -> None:
        client.logged_in = False
        if not client.writer.is_closing():
            client.writer.close()


class ChannelsUp:
    """The channels a stream of events leaves up: what ``CoreShowChannels`` answers.

    Reads only the events that create, change or end a channel, so following
    a benchmark's megabytes costs little.
    """

    _WATCHED = (
        b"Event: Newchannel\r\n",
        b"Event: NewCallerid\r\n",
        b"Event: Newstate\r\n",
        b"Event: Hangup\r\n",
        b"Event: BridgeEnter\r\n",
        b"Event: BridgeLeave\r\n",
    )

    def __init__(self) -> None:
        self._up: dict[str, dict[str, str]] = {}
        self._pending = b""

    def follow(self, data: bytes) -> None:
        blocks = (self._pending + data).split(END)
        self._pending = blocks.pop()
        for block in blocks:
            block = block.lstrip(b"\r\n") + b"\r\n"
            if block.startswith(self._WATCHED):
                self._apply(parse_action(block))

    def channels(self) -> list[dict[str, str]]:
        return list(self._up.values())

    def _apply(self, event: Action) -> None:
        uniqueid = str(event.get("Uniqueid", ""))
        name = event.get("Event")
        if name == "Newchannel":
            fields = ("Channel", "Uniqueid", "Linkedid", "Context", "ChannelState", "CallerIDNum")
            self._up[uniqueid] = {key: str(event.get(key, "")) for key in fields}
            self._up[uniqueid]["Extension"] = str(event.get("Exten", ""))
        elif name == "Hangup":
            self._up.pop(uniqueid, None)
        elif uniqueid in self._up:
            channel = self._up[uniqueid]
            if name == "Newstate":
                channel["ChannelState"] = str(event.get("ChannelState", ""))
            elif name == "NewCallerid":
                channel["CallerIDNum"] = str(event.get("CallerIDNum", ""))
            elif name == "BridgeEnter":
                channel["BridgeId"] = str(event.get("BridgeUniqueid", ""))
            else:
                channel.pop("BridgeId", None)


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
