"""The composition root: the one module that wires store, job queue and services from Settings.

Nothing else opens engines or chooses implementations; the web app, the CLI
and the worker all ask this module for an open :class:`Hub`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import tomllib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from commhub.channels import (
    Channel,
    ChannelConfigError,
    ChannelContext,
    ChannelFactory,
    MailCursors,
    Mailer,
    SmsGateway,
)
from commhub.config import Settings
from commhub.domain.opt_outs import Keywords
from commhub.domain.roles import Role
from commhub.jobs.arq_queue import ArqJobs
from commhub.jobs.inprocess import InProcessJobs
from commhub.jobs.queue import JobFunction, JobQueue, job_context
from commhub.models import Outbox, User
from commhub.services import import_control, users
from commhub.services.database import Database
from commhub.services.inbound import Inbound
from commhub.services.live import LiveFeed
from commhub.services.mail_cursors import StoredCursors
from commhub.services.mail_sending import SEND_JOB
from commhub.services.outbox import OutboxKeeper
from commhub.services.sms_sender import SmsSender
from commhub.store import outbox as outbox_store
from commhub.store.engine import SessionFactory, open_engine, session_factory
from commhub.store.migrate import current_revision, upgrade

log = logging.getLogger(__name__)

FIRST_ADMIN = "admin"
HOUSEKEEPING_EVERY_S = 3600.0
ADAPTER_GROUP = "commhub.adapters"


def job_functions() -> list[JobFunction]:
    """Every background job the hub knows, for both the in-process runner and arq workers."""
    from commhub.jobs.imports import run_import
    from commhub.services.mail_sending import send_outbox

    return [run_import, send_outbox]


@dataclass
class Hub:
    """The open resources of one process."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    jobs: JobQueue
    feed: LiveFeed
    inbound: Inbound
    channels: dict[str, Channel] = field(default_factory=dict)
    listening: bool = False
    sms_senders: dict[str, SmsSender] = field(default_factory=dict)
    """One per SMS gateway, in the listening process: it owns the gateways' pace."""
    mail_keeper: OutboxKeeper | None = None
    """Turns e-mail claims whose job died mid-dialogue uncertain (the listening process)."""
    housekeeping: asyncio.Task[None] | None = None
    """Deletes import files past their retention, now and every hour."""

    @property
    def sms_gateways(self) -> list[SmsGateway]:
        return [c for c in self.channels.values() if isinstance(c, SmsGateway)]

    async def listen(self) -> None:
        """Start the inbound path and connect every channel (the owner process only)."""
        await self.inbound.start()
        for channel in self.channels.values():
            await channel.start(self.inbound.sink)
        for gateway in self.sms_gateways:
            sender = SmsSender(
                gateway,
                sessions=self.sessions,
                feed=self.feed,
                window=gateway.window,
                lease_s=self.settings.outbox_lease_s,
            )
            await sender.start()
            self.sms_senders[gateway.name] = sender
        mailboxes = [c.name for c in self.channels.values() if isinstance(c, Mailer)]
        if mailboxes:
            self.mail_keeper = OutboxKeeper(
                self.sessions,
                channel="email",
                sources=mailboxes,
                lease_s=self.settings.outbox_lease_s,
            )
            self.mail_keeper.start()
        self.listening = True

    async def outbox_queued(self, row: Outbox) -> None:
        """A row went (back) to ``queued``: its sender hears of it now, not at the next poll."""
        if row.channel == "email":
            await self.jobs.enqueue(SEND_JOB, row.id, job_id=f"outbox:{row.id}:{row.attempts}")
        else:
            self.sms_queued(row.source)

    def sms_queued(self, gateway: str) -> None:
        """A message was queued for ``gateway``: its sender (if it is here) looks at once."""
        sender = self.sms_senders.get(gateway)
        if sender is not None:
            sender.wake()

    async def close(self) -> None:
        if self.housekeeping is not None:
            self.housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.housekeeping
            self.housekeeping = None
        if self.listening:
            for sender in self.sms_senders.values():
                await sender.stop()
            self.sms_senders.clear()
            if self.mail_keeper is not None:
                await self.mail_keeper.stop()
                self.mail_keeper = None
            for channel in self.channels.values():
                await channel.stop()
            await self.inbound.stop()
            self.listening = False
        await self.jobs.close()
        await self.engine.dispose()


@contextlib.asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """The database alone, for one-off commands and job workers: no channels, no job queue."""
    engine = open_engine(settings.effective_database_url, log_parameters=settings.log_personal_data)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def migrate_database(settings: Settings) -> str | None:
    """Bring the schema up to date; the revision it is at afterwards."""
    engine = open_engine(settings.effective_database_url, log_parameters=settings.log_personal_data)
    try:
        await upgrade(engine)
        return await current_revision(engine)
    finally:
        await engine.dispose()


async def open_hub(
    settings: Settings,
    *,
    jobs: JobQueue | None = None,
    channels: Sequence[Channel] | None = None,
    background: bool = True,
) -> Hub:
    """Open the database (migrating it if so configured), the job queue and the channels.

    With ``COMMHUB_REDIS_URL`` set, jobs go to arq workers; otherwise they run
    in this process with the same functions. Channels come from
    ``COMMHUB_CHANNELS_FILE`` unless given; they connect only when
    ``COMMHUB_LISTEN`` is on, so that one process owns each PBX link.
    ``background`` (a hub that serves, not a one-off command) also recovers
    the imports a stop interrupted and deletes import files past retention.
    """
    engine = open_engine(settings.effective_database_url, log_parameters=settings.log_personal_data)
    try:
        sessions = session_factory(engine)
        if channels is None:
            channels = load_channels(settings, cursors=StoredCursors(sessions))
        if settings.migrate_on_start:
            await upgrade(engine)
        if jobs is None:
            jobs = make_job_queue(settings, sessions, channels)
        await jobs.start()
        feed = LiveFeed()
        inbound = Inbound(
            db=sessions,
            feed=feed,
            region=settings.phone_region,
            create_unknown=settings.create_unknown_callers,
            create_unknown_senders=settings.create_unknown_senders,
            sms_keywords=sms_keywords(settings),
        )
        for channel in channels:
            if isinstance(channel, Mailer):
                inbound.mail.add_mailbox(channel.name, channel.address)
        hub = Hub(
            settings=settings,
            engine=engine,
            sessions=sessions,
            jobs=jobs,
            feed=feed,
            inbound=inbound,
            channels={channel.name: channel for channel in channels},
        )
        if background:
            await requeue_imports(hub)
            hub.housekeeping = asyncio.create_task(keep_house(hub), name="import retention")
        if settings.listen:
            await hub.listen()
            await requeue_outbox(hub)
    except BaseException:
        await engine.dispose()
        raise
    return hub


async def requeue_outbox(hub: Hub) -> None:
    """Queue a send job for every e-mail still waiting: in-process jobs die with the process.

    Only e-mail goes by job; each SMS gateway's sender reads its own queue.
    """
    async with hub.sessions() as session:
        waiting = await outbox_store.queued_ids(session, channel="email")
    for outbox_id in waiting:
        await hub.jobs.enqueue(SEND_JOB, outbox_id, job_id=f"outbox:{outbox_id}")
    if waiting:
        log.info("%d e-mails waiting in the outbox were queued for sending", len(waiting))


async def requeue_imports(hub: Hub) -> None:
    """Imports a stop left running here are interrupted; the queue's jobs are handed out again."""
    waiting = await import_control.recover(hub.sessions, in_process=not hub.settings.redis_url)
    for import_id in waiting:
        await hub.jobs.enqueue(
            import_control.IMPORT_JOB, import_id, job_id=import_control.job_id(import_id)
        )


async def keep_house(hub: Hub) -> None:
    """Delete import files past retention at start and every hour; a failure waits for the next."""
    while True:
        try:
            await import_control.delete_expired_files(hub.sessions, hub.settings)
        except Exception:
            log.exception("could not delete import files past retention")
        await asyncio.sleep(HOUSEKEEPING_EVERY_S)


def load_channels(settings: Settings, *, cursors: MailCursors | None = None) -> list[Channel]:
    """Build the channels the channels file names, each by its adapter's entry point.

    ``cursors`` lets mailbox channels resume where the last import stopped; a
    process that only sends (a worker) passes none. Raises
    :class:`ChannelConfigError` naming the file and entry at fault.
    """
    path = settings.channels_file
    if path is None:
        return []
    entries = _channel_entries(path)
    factories = {point.name: point for point in entry_points(group=ADAPTER_GROUP)}
    context = ChannelContext(
        phone_region=settings.phone_region,
        mail_cursors=cursors,
        public_url=settings.public_url or None,
    )
    built: list[Channel] = []
    for index, entry in enumerate(entries, start=1):
        options = dict(entry)
        adapter = str(options.pop("adapter", ""))
        name = str(options.pop("name", ""))
        where = f"{path}: channel {index}"
        if adapter not in factories:
            known = ", ".join(sorted(factories)) or "none installed"
            raise ChannelConfigError(f"{where}: unknown adapter {adapter!r} (known: {known})")
        if not name or any(c in name for c in ": /"):
            raise ChannelConfigError(f"{where}: needs a short name without ':', '/' or spaces")
        if any(channel.name == name for channel in built):
            raise ChannelConfigError(f"{where}: the name {name!r} is used twice")
        factory: ChannelFactory = factories[adapter].load()
        built.append(factory(name=name, options=options, context=context))
    return built


def _channel_entries(path: Path) -> list[dict[str, Any]]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ChannelConfigError(f"cannot read the channels file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ChannelConfigError(f"{path} is not valid TOML: {exc}") from None
    entries = document.get("channels", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ChannelConfigError(f"{path}: write each channel as a [[channels]] table")
    return entries


def make_job_queue(
    settings: Settings, sessions: SessionFactory, channels: Sequence[Channel] = ()
) -> JobQueue:
    if settings.redis_url:
        return ArqJobs(redis_url=settings.redis_url, functions=job_functions())
    context = job_context(
        settings=settings,
        sessions=sessions,
        channels={channel.name: channel for channel in channels},
    )
    return InProcessJobs(functions=job_functions(), context=context)


async def ensure_first_admin(hub: Hub) -> str | None:
    """Create the ``admin`` user on an empty hub; returns its password to show once.

    The password is ``COMMHUB_ADMIN_PASSWORD`` if set, else a random one.
    Returns ``None`` when users already exist.
    """
    async with hub.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(User))
        if count:
            return None
        configured = hub.settings.admin_password
        password = (
            configured.get_secret_value() if configured is not None else secrets.token_urlsafe(12)
        )
        await users.create_user(session, username=FIRST_ADMIN, password=password, role=Role.ADMIN)
        await session.commit()
    log.info("created the first admin user %r", FIRST_ADMIN)
    return None if configured is not None else password


def sms_keywords(settings: Settings) -> Keywords:
    try:
        return Keywords.of(settings.sms_stop_words, settings.sms_start_words)
    except ValueError as exc:
        raise ChannelConfigError(
            f"COMMHUB_SMS_STOP_WORDS / COMMHUB_SMS_START_WORDS: {exc}"
        ) from None
