"""One mailbox as a channel: sends through SMTP, watches its IMAP folders."""

from __future__ import annotations

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
        self._sender = (
            SmtpSender(mailbox=name, settings=settings.smtp) if settings.smtp is not None else None
        )
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
    def watchers(self) -> list[FolderWatcher]:
        return list(self._watchers)

    async def start(self, sink: EventSink) -> None:
        for watcher in self._watchers:
            await watcher.start(sink)

    async def stop(self) -> None:
        for watcher in self._watchers:
            await watcher.stop()
        if self._sender is not None:
            await self._sender.close()

    async def send(self, message: OutboundEmail) -> SendResult:
        if self._sender is None:
            raise ChannelUnavailable(
                f"mailbox {self._name!r} has no [smtp] settings: it only reads"
            )
        return await self._sender.send(message)

    def health(self) -> ChannelHealth:
        folders = [watcher.status() for watcher in self._watchers]
        errors = [f"{f['folder']}: {f['error']}" for f in folders if f.get("error")]
        detail: dict[str, Any] = {"address": self.address, "folders": folders}
        last: list[datetime] = [f["last_event_at"] for f in folders if f.get("last_event_at")]
        if self._sender is not None:
            sender = self._sender
            detail["smtp"] = {
                "connected": sender.connected,
                "sent": sender.sent,
                "connects": sender.connects,
                "last_sent_at": sender.last_sent_at,
                "error": sender.error,
            }
            if sender.error:
                errors.append(f"smtp: {sender.error}")
            if sender.last_sent_at is not None:
                last.append(sender.last_sent_at)
        connected = all(f.get("connected") for f in folders) and not (
            self._sender is not None and self._sender.error
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
