"""The in-process runner: background jobs inside the hub process (embedded default).

It keeps arq's contract so a job function cannot tell where it runs: the
same ``ctx`` keys (``job_id``, ``job_try``, ``enqueue_time``), a job id that
is queued or running only once, retries with backoff (also when the job
raises arq's ``Retry``), a timeout per try. Jobs live in memory: when the hub
stops, every job that had not finished is logged by id, never dropped unsaid.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from arq.worker import Retry

from commhub.jobs.constants import (
    JOB_TIMEOUT_S,
    MAX_CONCURRENT_JOBS,
    MAX_TRIES,
    RETRY_DELAY_S,
    SHUTDOWN_GRACE_S,
)
from commhub.jobs.queue import (
    JobFunction,
    JobQueueNotRunningError,
    check_known,
    jobs_by_name,
    retry_delay,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Job:
    job_id: str
    name: str
    function: JobFunction
    args: tuple[Any, ...]
    enqueue_time: datetime


class InProcessJobs:
    """Runs job functions as asyncio tasks, at most ``max_jobs`` at a time."""

    def __init__(
        self,
        *,
        functions: Sequence[JobFunction],
        context: dict[str, Any],
        max_jobs: int = MAX_CONCURRENT_JOBS,
        max_tries: int = MAX_TRIES,
        retry_delay_s: float = RETRY_DELAY_S,
        job_timeout_s: float = JOB_TIMEOUT_S,
        shutdown_grace_s: float = SHUTDOWN_GRACE_S,
    ) -> None:
        self._functions = jobs_by_name(functions)
        self._context = context
        self._slots = asyncio.Semaphore(max_jobs)
        self._max_tries = max_tries
        self._retry_delay_s = retry_delay_s
        self._job_timeout_s = job_timeout_s
        self._shutdown_grace_s = shutdown_grace_s
        self._started = asyncio.Event()
        self._closed = False
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._jobs: dict[str, _Job] = {}
        self._running: set[str] = set()

    async def start(self) -> None:
        """Let queued jobs run; jobs enqueued before this wait, as on an idle Redis queue."""
        if self._closed:
            raise JobQueueNotRunningError("the in-process job runner is closed")
        self._started.set()

    async def enqueue(self, function_name: str, *args: Any, job_id: str | None = None) -> str:
        if self._closed:
            raise JobQueueNotRunningError(
                f"cannot enqueue {function_name!r}: the in-process job runner is closed"
            )
        check_known(self._functions, function_name)
        job_id = job_id or uuid4().hex
        if job_id in self._tasks:
            log.info("job %s (%s) is already queued or running", job_id, function_name)
            return job_id
        job = _Job(
            job_id=job_id,
            name=function_name,
            function=self._functions[function_name],
            args=args,
            enqueue_time=datetime.now(UTC),
        )
        task = asyncio.create_task(self._run(job), name=f"job {job_id}")
        # A task cancelled before its first step never enters _run's finally.
        task.add_done_callback(lambda done: self._forget(job_id, done))
        self._jobs[job_id] = job
        self._tasks[job_id] = task
        return job_id

    async def join(self) -> None:
        """Wait until every job enqueued so far, and any it enqueues, has finished."""
        while pending := [task for task in self._tasks.values() if not task.done()]:
            await asyncio.wait(pending)

    async def close(self) -> None:
        """Stop: jobs not yet started are cancelled at once, running ones get a grace period.

        Each job that did not finish is logged with its id and function, so a
        person can run it again.
        """
        self._closed = True
        waiting = [job_id for job_id in self._tasks if job_id not in self._running]
        self._cancel(waiting, "it was waiting for its turn or for a retry")
        running = [self._tasks[job_id] for job_id in self._running if job_id in self._tasks]
        if running:
            await asyncio.wait(running, timeout=self._shutdown_grace_s)
        self._cancel(list(self._tasks), f"it was still running after {self._shutdown_grace_s}s")
        await self.join()

    def _cancel(self, job_ids: list[str], why: str) -> None:
        for job_id in job_ids:
            task = self._tasks.get(job_id)
            if task is None or task.done():
                continue
            job = self._jobs[job_id]
            log.warning(
                "job %s (%s%r) not done: the hub stopped and %s", job_id, job.name, job.args, why
            )
            task.cancel()

    async def _run(self, job: _Job) -> None:
        try:
            await self._started.wait()
            job_try = 1
            while True:
                async with self._slots:
                    self._running.add(job.job_id)
                    try:
                        delay = await self._try(job, job_try)
                    finally:
                        self._running.discard(job.job_id)
                if delay is None:
                    return
                await asyncio.sleep(delay)
                job_try += 1
        finally:
            # Here rather than only in the done-callback, so that the id is free
            # again the moment the job has finished.
            current = asyncio.current_task()
            if current is not None:
                self._forget(job.job_id, current)

    def _forget(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]
            del self._jobs[job_id]

    async def _try(self, job: _Job, job_try: int) -> float | None:
        """Run one try; return the delay before the next try, or None when the job is over."""
        ctx = {
            **self._context,
            "job_id": job.job_id,
            "job_try": job_try,
            "max_tries": self._max_tries,
            "enqueue_time": job.enqueue_time,
        }
        ref = f"{job.job_id} ({job.name})"
        deadline = asyncio.timeout(self._job_timeout_s)
        try:
            async with deadline:
                await job.function(ctx, *job.args)
        except Retry as retry:
            if job_try >= self._max_tries:
                log.error("job %s failed: still asked to retry after %d tries", ref, job_try)
                return None
            delay = (retry.defer_score or 0) / 1000
            log.info("job %s asked to retry in %.2fs (try %d)", ref, delay, job_try)
            return delay
        except TimeoutError:
            if not deadline.expired():
                return self._failed(ref, job_try)
            log.error("job %s failed: try %d ran over %ss", ref, job_try, self._job_timeout_s)
            return None
        except Exception:
            return self._failed(ref, job_try)
        log.info("job %s done (try %d)", ref, job_try)
        return None

    def _failed(self, ref: str, job_try: int) -> float | None:
        """Log the exception being handled; retry it unless this was the last try."""
        if job_try >= self._max_tries:
            log.exception("job %s failed after %d tries", ref, job_try)
            return None
        delay = retry_delay(job_try, self._retry_delay_s)
        log.warning(
            "job %s failed on try %d of %d, retrying in %.2fs",
            ref,
            job_try,
            self._max_tries,
            delay,
            exc_info=True,
        )
        return delay
