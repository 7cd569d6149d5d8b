"""The arq worker for commhub: takes jobs from Redis and runs the same functions as in-process.

Each job function is wrapped so that any exception is retried with the
in-process runner's backoff (arq alone retries only on its ``Retry``), and
the worker keeps no results in Redis: the job's own rows are the record,
and a finished job id can be enqueued again, exactly as in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence
from typing import Any

from arq.worker import Function, Retry, Worker, func
from redis.exceptions import RedisError

from commhub.bootstrap import open_database
from commhub.config import Settings
from commhub.jobs.arq_queue import redis_location, redis_settings
from commhub.jobs.constants import (
    HEALTH_CHECK_SUFFIX,
    JOB_TIMEOUT_S,
    MAX_CONCURRENT_JOBS,
    MAX_TRIES,
    POLL_DELAY_S,
    QUEUE_NAME,
    RETRY_DELAY_S,
)
from commhub.jobs.queue import (
    JobFunction,
    JobQueueError,
    JobQueueUnavailableError,
    job_context,
    jobs_by_name,
    retry_delay,
)

log = logging.getLogger(__name__)

_DATABASE = "commhub_database"


def build_worker(
    settings: Settings,
    functions: Sequence[JobFunction],
    *,
    queue_name: str = QUEUE_NAME,
    burst: bool = False,
    handle_signals: bool = True,
    max_jobs: int = MAX_CONCURRENT_JOBS,
    max_tries: int = MAX_TRIES,
    retry_delay_s: float = RETRY_DELAY_S,
    job_timeout_s: float = JOB_TIMEOUT_S,
    poll_delay_s: float = POLL_DELAY_S,
) -> Worker:
    """An arq worker for ``functions`` on ``settings.redis_url``; call it inside the event loop.

    Startup opens the database from ``settings`` into ``ctx`` (``sessions``
    and ``settings``); shutdown disposes of it. ``burst`` stops once the queue
    is empty (tests, one-off runs).
    """
    if not settings.redis_url:
        raise JobQueueError("COMMHUB_REDIS_URL is not set: an arq worker needs Redis")

    async def open_store(ctx: dict[str, Any]) -> None:
        opened = contextlib.AsyncExitStack()
        db = await opened.enter_async_context(open_database(settings))
        ctx[_DATABASE] = opened
        ctx.update(job_context(settings=settings, sessions=db))

    async def close_store(ctx: dict[str, Any]) -> None:
        opened = ctx.pop(_DATABASE, None)
        if opened is not None:
            await opened.aclose()

    return Worker(
        [
            _retrying(name, function, max_tries=max_tries, retry_delay_s=retry_delay_s)
            for name, function in jobs_by_name(functions).items()
        ],
        queue_name=queue_name,
        health_check_key=queue_name + HEALTH_CHECK_SUFFIX,
        redis_settings=redis_settings(settings.redis_url),
        burst=burst,
        handle_signals=handle_signals,
        on_startup=open_store,
        on_shutdown=close_store,
        max_jobs=max_jobs,
        max_tries=max_tries,
        job_timeout=job_timeout_s,
        keep_result=0,
        poll_delay=poll_delay_s,
    )


async def run_worker(worker: Worker) -> None:
    """Run ``worker`` until SIGINT/SIGTERM (or, in burst mode, an empty queue), then close it."""
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        # arq stops on a signal by cancelling its own main task: a clean stop.
        # A cancellation aimed at us must still go through.
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except (RedisError, OSError, TimeoutError) as exc:
        location = redis_location(worker.redis_settings) if worker.redis_settings else "redis"
        raise JobQueueUnavailableError(f"cannot reach {location}: {exc}") from None
    finally:
        await worker.close()


def _retrying(
    name: str, function: JobFunction, *, max_tries: int, retry_delay_s: float
) -> Function:
    """``function`` under arq, retried after any exception until ``max_tries``."""

    @functools.wraps(function)
    async def run(ctx: dict[str, Any], *args: Any) -> Any:
        try:
            return await function({**ctx, "max_tries": max_tries}, *args)
        except Retry:
            raise
        except Exception as exc:
            job_try: int = ctx["job_try"]
            if job_try >= max_tries:
                log.error("job %s (%s) failed after %d tries", ctx["job_id"], name, job_try)
                raise
            delay = retry_delay(job_try, retry_delay_s)
            log.warning(
                "job %s (%s) failed on try %d of %d, retrying in %.2fs",
                ctx["job_id"],
                name,
                job_try,
                max_tries,
                delay,
                exc_info=True,
            )
            raise Retry(defer=delay) from exc

    return func(run, name=name)
