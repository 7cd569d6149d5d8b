"""One mailbox as a channel: sends through SMTP, watches its IMAP folders."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from commhub.channels import (
    ChannelHealth,
    ChannelUnavailable,
    EmailCursors,
    EventSink,
    OutboundEmail,
    SendResult,
)
from commhub_email.config import MailboxSettings
from commhub_email.imap import FolderWatcher
from commhub_email.smtp import SmtpSender

KIND = "email"


class MailboxChannel:
    """A :class:`~commhub.channels.Mailbox`: the hub's address at one mail provider."""

    def __init__(
        self, *, name: str, settings: MailboxSettings, cursors: EmailCursors | None
    ) -> None:
        self._name = name
        self._settings = settings
        smtp = settings.smtp
        self._senders = (
            [SmtpSender(mailbox=name, settings=smtp) for _ in range(smtp.connections)]
            if smtp is not None
            else []
        )
        self._idle: asyncio.Queue[SmtpSender] | None = None
        imap = settings.imap
        self._watchers = (
            [
                FolderWatcher(
                    source=name,
                    folder=folder,
                    settings=imap,
                    max_message_bytes=settings.max_message_bytes,
                    cursors=cursors,
                )
                for folder in imap.folders
            ]
            if imap is not None and cursors is not None
            else []
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def address(self) -> str:
        return self._settings.address

    @property
    def display_name(self) -> str:
        return self._settings.display_name

    @property
    def max_message_bytes(self) -> int:
        return self._settings.max_message_bytes

    @property
    def window(self) -> int:
        """Messages it may have in flight at once: one per SMTP connection."""
        return max(1, len(self._senders))

    @property
    def watchers(self) -> list[FolderWatcher]:
        return list(self._watchers)

    async def start(self, sink: EventSink) -> None:
        for watcher in self._watchers:
            await watcher.start(sink)

    async def stop(self) -> None:
        for watcher in self._watchers:
            await watcher.stop()
        for sender in self._senders:
            await sender.close()

    async def send(self, message: OutboundEmail) -> SendResult:
        """Send on a free connection (waiting for one if all are busy)."""
        if not self._senders:
            raise ChannelUnavailable(
                f"mailbox {self._name!r} has no [smtp] settings: it only reads"
            )
        if self._idle is None:
            self._idle = asyncio.Queue()
            for sender in self._senders:
                self._idle.put_nowait(sender)
        sender = await self._idle.get()
        try:
            return await sender.send(message)
        finally:
            self._idle.put_nowait(sender)

    def health(self) -> ChannelHealth:
        folders = [watcher.status() for watcher in self._watchers]
        errors = [f"{f['folder']}: {f['error']}" for f in folders if f.get("error")]
        detail: dict[str, Any] = {"address": self.address, "folders": folders}
        last: list[datetime] = [f["last_event_at"] for f in folders if f.get("last_event_at")]
        if self._senders:
            senders = self._senders
            sent_at = [s.last_sent_at for s in senders if s.last_sent_at is not None]
            error = next((s.error for s in senders if s.error), None)
            detail["smtp"] = {
                "connected": any(s.connected for s in senders),
                "connections": len(senders),
                "sent": sum(s.sent for s in senders),
                "connects": sum(s.connects for s in senders),
                "last_sent_at": max(sent_at) if sent_at else None,
                "error": error,
            }
            if error:
                errors.append(f"smtp: {error}")
            last += sent_at
        connected = all(f.get("connected") for f in folders) and not any(
            s.error for s in self._senders
        )
        return ChannelHealth(
            name=self._name,
            kind=KIND,
            connected=connected,
            last_event_at=max(last) if last else None,
            reconnects=sum(int(f.get("reconnects", 0)) for f in folders),
            error="; ".join(errors) or None,
            detail=detail,
        )
