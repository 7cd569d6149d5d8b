"""Enqueueing on Redis for arq workers (production).

Redis and arq errors stop here and become ``JobQueueError``s; messages name
the Redis host, never the URL, which may hold a password.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from uuid import uuid4

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.exceptions import RedisError

from commhub.jobs.constants import QUEUE_NAME
from commhub.jobs.queue import (
    JobFunction,
    JobQueueError,
    JobQueueNotRunningError,
    JobQueueUnavailableError,
    check_known,
    jobs_by_name,
)

log = logging.getLogger(__name__)


def redis_settings(url: str) -> RedisSettings:
    """arq's connection settings for ``url``, or a ``JobQueueError`` saying what is wrong."""
    try:
        return RedisSettings.from_dsn(url)
    except (RuntimeError, ValueError) as exc:
        raise JobQueueError(
            f"COMMHUB_REDIS_URL is not a Redis URL (redis://host:port/db): {exc}"
        ) from None


def redis_location(settings: RedisSettings) -> str:
    """Where Redis is, for messages: host, port and database, no credentials."""
    return f"redis at {settings.host}:{settings.port}/{settings.database}"


class ArqJobs:
    """Puts jobs on the arq queue that ``commhub worker`` processes take them from."""

    def __init__(
        self,
        *,
        redis_url: str,
        functions: Sequence[JobFunction],
        queue_name: str = QUEUE_NAME,
    ) -> None:
        self._settings = redis_settings(redis_url)
        self._functions = jobs_by_name(functions)
        self._queue_name = queue_name
        self._pool: ArqRedis | None = None

    async def start(self) -> None:
        if self._pool is not None:
            return
        try:
            self._pool = await create_pool(self._settings, default_queue_name=self._queue_name)
        except (RedisError, OSError, TimeoutError) as exc:
            raise JobQueueUnavailableError(
                f"cannot reach {redis_location(self._settings)}: {exc}"
            ) from None

    async def enqueue(self, function_name: str, *args: Any, job_id: str | None = None) -> str:
        check_known(self._functions, function_name)
        if self._pool is None:
            raise JobQueueNotRunningError(
                f"cannot enqueue {function_name!r}: the Redis job queue is not started"
            )
        job_id = job_id or uuid4().hex
        try:
            job = await self._pool.enqueue_job(
                function_name, *args, _job_id=job_id, _queue_name=self._queue_name
            )
        except (RedisError, OSError, TimeoutError) as exc:
            raise JobQueueUnavailableError(
                f"job {function_name!r} not queued, cannot reach "
                f"{redis_location(self._settings)}: {exc}"
            ) from None
        if job is None:
            log.info("job %s (%s) is already queued or running", job_id, function_name)
        return job_id

    async def close(self) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        await pool.aclose()
