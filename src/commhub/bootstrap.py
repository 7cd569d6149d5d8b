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
from datetime import timedelta
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
    EmailCursors,
    Mailbox,
    SmsGateway,
)
from commhub.config import Settings
from commhub.domain.opt_outs import Keywords
from commhub.domain.roles import Role
from commhub.jobs.arq_queue import ArqJobs
from commhub.jobs.inprocess import InProcessJobs
from commhub.jobs.queue import JobFunction, JobQueue, job_context
from commhub.models import User
from commhub.services import campaign_keeper, import_control, users
from commhub.services.database import Database
from commhub.services.dispatch import Dispatcher
from commhub.services.email_cursors import StoredCursors
from commhub.services.email_dispatch import EmailDelivery
from commhub.services.inbound import Inbound
from commhub.services.live import LiveFeed
from commhub.services.sms_dispatch import SmsDelivery
from commhub.store.engine import SessionFactory, open_engine, session_factory
from commhub.store.migrate import current_revision, upgrade

log = logging.getLogger(__name__)

FIRST_ADMIN = "admin"
HOUSEKEEPING_EVERY_S = 3600.0
ADAPTER_GROUP = "commhub.adapters"


def job_functions() -> list[JobFunction]:
    """Every background job the hub knows, for both the in-process runner and arq workers."""
    from commhub.jobs.imports import run_import
    from commhub.services.campaign_jobs import campaign_fill, campaign_freeze

    return [run_import, campaign_freeze, campaign_fill]


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
    dispatchers: dict[str, Dispatcher] = field(default_factory=dict)
    """One per channel that sends (mailbox, SMS gateway), in the listening process: it owns
    the channel's pace and its claims."""
    housekeeping: asyncio.Task[None] | None = None
    """Deletes import files past their retention, now and every hour."""
    campaigns: asyncio.Task[None] | None = None
    """The campaign keeper: starts, feeds and finishes campaigns (``services/campaign_keeper``)."""
    campaigns_wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def sms_gateways(self) -> list[SmsGateway]:
        return [c for c in self.channels.values() if isinstance(c, SmsGateway)]

    async def listen(self) -> None:
        """Start the inbound path and connect every channel (the owner process only)."""
        await self.inbound.start()
        for channel in self.channels.values():
            await channel.start(self.inbound.sink)
        for channel in self.channels.values():
            dispatcher = self._dispatcher(channel)
            if dispatcher is not None:
                await dispatcher.start()
                self.dispatchers[channel.name] = dispatcher
        self.listening = True

    def _dispatcher(self, channel: Channel) -> Dispatcher | None:
        delivery: SmsDelivery | EmailDelivery
        if isinstance(channel, SmsGateway):
            delivery, rate, window = SmsDelivery(), channel.rate, channel.window
        elif isinstance(channel, Mailbox):
            delivery, rate, window = EmailDelivery(), None, channel.window
        else:
            return None
        return Dispatcher(
            channel,
            delivery,
            db=self.sessions,
            feed=self.feed,
            rate=rate,
            window=window,
            lease_s=self.settings.outbox_lease_s,
        )

    def keep_campaigns_now(self) -> None:
        """A campaign was started or resumed here: the keeper looks now, not at its next tick."""
        self.campaigns_wake.set()

    def dispatch_now(self, source: str) -> None:
        """A row was queued for ``source``: its dispatcher (if it is here) looks at once."""
        dispatcher = self.dispatchers.get(source)
        if dispatcher is not None:
            dispatcher.wake()

    async def close(self) -> None:
        for task in (self.housekeeping, self.campaigns):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.housekeeping = self.campaigns = None
        if self.listening:
            for dispatcher in self.dispatchers.values():
                await dispatcher.stop()
            self.dispatchers.clear()
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
            jobs = make_job_queue(settings, sessions)
        await jobs.start()
        feed = LiveFeed()
        inbound = Inbound(
            db=sessions,
            feed=feed,
            region=settings.phone_region,
            create_unknown=settings.create_unknown_callers,
            create_unknown_senders=settings.create_unknown_senders,
            sms_keywords=sms_keywords(settings),
            campaign_reply_window=timedelta(days=settings.campaign_reply_window_days),
        )
        for channel in channels:
            if isinstance(channel, Mailbox):
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
            hub.campaigns = asyncio.create_task(
                campaign_keeper.run(sessions, jobs, wake=hub.campaigns_wake), name="campaign keeper"
            )
        if settings.listen:
            await hub.listen()
    except BaseException:
        await engine.dispose()
        raise
    return hub


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


def load_channels(settings: Settings, *, cursors: EmailCursors | None = None) -> list[Channel]:
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
        email_cursors=cursors,
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


def make_job_queue(settings: Settings, sessions: SessionFactory) -> JobQueue:
    if settings.redis_url:
        return ArqJobs(redis_url=settings.redis_url, functions=job_functions())
    context = job_context(settings=settings, sessions=sessions)
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
