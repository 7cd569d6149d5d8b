"""The composition root: the one module that wires store, job queue and services from Settings.

Nothing else opens engines or chooses implementations; the web app, the CLI
and the worker all ask this module for an open :class:`Hub`.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from commhub.config import Settings
from commhub.domain.roles import Role
from commhub.jobs.arq_queue import ArqJobs
from commhub.jobs.inprocess import InProcessJobs
from commhub.jobs.queue import JobFunction, JobQueue, job_context
from commhub.services import users
from commhub.store.engine import SessionFactory, open_engine, session_factory
from commhub.store.migrate import upgrade
from commhub.store.schema import User

log = logging.getLogger(__name__)

FIRST_ADMIN = "admin"


def job_functions() -> list[JobFunction]:
    """Every background job the hub knows, for both the in-process runner and arq workers."""
    from commhub.jobs.imports import run_import

    return [run_import]


@dataclass
class Hub:
    """The open resources of one process."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    jobs: JobQueue

    async def close(self) -> None:
        await self.jobs.close()
        await self.engine.dispose()


async def open_hub(settings: Settings, *, jobs: JobQueue | None = None) -> Hub:
    """Open the database (migrating it if so configured) and the job queue.

    With ``COMMHUB_REDIS_URL`` set, jobs go to arq workers; otherwise they run
    in this process with the same functions.
    """
    engine = open_engine(settings.effective_database_url)
    try:
        if settings.migrate_on_start:
            await upgrade(engine)
        sessions = session_factory(engine)
        if jobs is None:
            jobs = make_job_queue(settings, sessions)
        await jobs.start()
    except BaseException:
        await engine.dispose()
        raise
    return Hub(settings=settings, engine=engine, sessions=sessions, jobs=jobs)


def make_job_queue(settings: Settings, sessions: SessionFactory) -> JobQueue:
    if settings.redis_url:
        return ArqJobs(redis_url=settings.redis_url, functions=job_functions())
    return InProcessJobs(
        functions=job_functions(), context=job_context(settings=settings, sessions=sessions)
    )


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
