"""The job queue port: what the hub needs to hand work to the background.

Two implementations: ``InProcessJobs`` (embedded default, one process) and
``ArqJobs`` (production, arq workers on Redis). Both run the same job
functions, give them the same context, retry the same way, and treat a
``job_id`` that is already queued or running as the same job.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

from commhub.config import Settings
from commhub.store.engine import SessionFactory

JobFunction = Callable[..., Coroutine[Any, Any, Any]]
"""``async def name(ctx: dict[str, Any], *args: Any) -> Any``; jobs are enqueued by its name."""


class JobQueueError(Exception):
    """A job could not be enqueued; the caller still holds the work."""


class UnknownJobError(JobQueueError):
    """The function name is not one this hub registered as a job."""


class JobQueueNotRunningError(JobQueueError):
    """The queue was not started yet or is already closed."""


class JobQueueUnavailableError(JobQueueError):
    """The queue's backing store (Redis) cannot be reached."""


class JobQueue(Protocol):
    """Where services put slow work; the job function does it later, elsewhere or here."""

    async def enqueue(self, function_name: str, *args: Any, job_id: str | None = None) -> str:
        """Queue ``function_name(ctx, *args)`` and return its job id.

        Enqueueing a ``job_id`` that is still queued or running does nothing and
        returns that id: the job runs once. Once it has finished, the same id
        may be enqueued again. Raises ``JobQueueError`` when the job is not queued.
        """
        ...

    async def start(self) -> None:
        """Connect or begin running jobs; calling it twice is harmless."""
        ...

    async def close(self) -> None:
        """Stop taking jobs and release what ``start`` opened."""
        ...


def job_context(*, settings: Settings, sessions: SessionFactory) -> dict[str, Any]:
    """The ``ctx`` every job function receives, besides ``job_id`` and ``job_try``.

    No channels: messages go out through their channel's dispatcher in the
    process that owns the channels, never from a job.
    """
    return {"settings": settings, "sessions": sessions}


def jobs_by_name(functions: Iterable[JobFunction]) -> dict[str, JobFunction]:
    """Job functions keyed by the name callers enqueue them under (their ``__name__``)."""
    named: dict[str, JobFunction] = {}
    for function in functions:
        name = function.__name__
        if name in named and named[name] is not function:
            raise ValueError(f"two job functions are named {name!r}")
        named[name] = function
    return named


def check_known(known: dict[str, JobFunction], function_name: str) -> None:
    """Refuse a name no worker could run, before it sits in a queue forever."""
    if function_name not in known:
        names = ", ".join(sorted(known)) or "none"
        raise UnknownJobError(f"no job function named {function_name!r} (registered: {names})")


def retry_delay(job_try: int, first_delay_s: float) -> float:
    """Seconds to wait after try ``job_try`` failed: ``first_delay_s``, then doubling."""
    return float(first_delay_s * 2 ** (job_try - 1))
