"""Background jobs on both runners: in-process and arq workers on a real Redis.

Every job here writes interactions through the real store, one row per try,
so the tests count what actually ran in the database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import pytest
from click.testing import CliRunner
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from commhub.cli import main
from commhub.config import Settings
from commhub.domain.interactions import Direction, Medium, NewInteraction, Status
from commhub.jobs.arq_queue import ArqJobs
from commhub.jobs.constants import HEALTH_CHECK_SUFFIX, MAX_TRIES, QUEUE_NAME
from commhub.jobs.inprocess import InProcessJobs
from commhub.jobs.queue import (
    JobFunction,
    JobQueue,
    JobQueueNotRunningError,
    UnknownJobError,
    job_context,
)
from commhub.jobs.worker import build_worker, run_worker
from commhub.models import Interaction
from commhub.store.engine import SessionFactory
from commhub.store.interactions import record

# arq 0.28's Worker.close() still calls redis-py's deprecated Redis.close().
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")

RETRY_DELAY_S = 0.05
WORKER_COMMAND_REDIS_DB = 13


async def note_run(ctx: dict[str, Any], tag: str) -> None:
    """Write one interaction for this try: the test's evidence that the job ran."""
    async with ctx["sessions"]() as session:
        await record(
            session,
            NewInteraction(
                channel=Medium.NOTE,
                direction=Direction.INTERNAL,
                status=Status.LOGGED,
                external_id=f"{ctx['job_id']}:try{ctx['job_try']}:{uuid4().hex}",
                occurred_at=datetime.now(UTC),
                summary=tag,
            ),
        )
        await session.commit()


async def fail_twice_then_note(ctx: dict[str, Any], tag: str) -> None:
    await note_run(ctx, tag)
    if ctx["job_try"] < 3:
        raise ConnectionError("SMS gateway did not answer")


async def always_fail(ctx: dict[str, Any], tag: str) -> None:
    await note_run(ctx, tag)
    raise ConnectionError("SMS gateway did not answer")


async def note_when_released(ctx: dict[str, Any], tag: str) -> None:
    """Start, wait for the test to open the gate, then write the row."""
    ctx["started"].set()
    await ctx["gate"].wait()
    await note_run(ctx, tag)


JOBS: list[JobFunction] = [note_run, fail_twice_then_note, always_fail]


async def runs_of(sessions: SessionFactory, tag: str) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(Interaction).where(Interaction.summary == tag)
        )
    return count or 0


@dataclass
class Runner:
    """A job queue and a way to wait until everything queued on it has run."""

    queue: JobQueue
    run_queued: Callable[[], Awaitable[None]]


@pytest.fixture
def redis_keys(redis_url: str, tag: str) -> Iterator[str]:
    """A queue name of this test's own; its keys and its jobs' keys are deleted afterwards.

    Job ids in these tests contain ``tag``, so arq's per-job keys match too.
    """
    yield f"commhub:test:{tag}"
    with Redis.from_url(redis_url) as redis:
        keys = list(redis.scan_iter(match=f"*{tag}*"))
        if keys:
            redis.delete(*keys)


@pytest.fixture(params=["inprocess", "arq"])
async def runner(
    request: pytest.FixtureRequest, database_url: str, sessions: SessionFactory
) -> AsyncIterator[Runner]:
    if request.param == "inprocess":
        settings = Settings(database_url=database_url, _env_file=None)
        jobs = InProcessJobs(
            functions=JOBS,
            context=job_context(settings=settings, sessions=sessions),
            retry_delay_s=RETRY_DELAY_S,
        )
        await jobs.start()
        yield Runner(queue=jobs, run_queued=jobs.join)
        await jobs.close()
        return

    redis_url = request.getfixturevalue("redis_url")
    queue_name = request.getfixturevalue("redis_keys")
    settings = Settings(database_url=database_url, redis_url=redis_url, _env_file=None)

    async def run_burst_worker() -> None:
        worker = build_worker(
            settings,
            JOBS,
            queue_name=queue_name,
            burst=True,
            handle_signals=False,
            retry_delay_s=RETRY_DELAY_S,
            poll_delay_s=0.02,
        )
        await run_worker(worker)

    arq_jobs = ArqJobs(redis_url=redis_url, functions=JOBS, queue_name=queue_name)
    await arq_jobs.start()
    yield Runner(queue=arq_jobs, run_queued=run_burst_worker)
    await arq_jobs.close()


@pytest.fixture
def tag() -> str:
    """What this test's rows carry; job ids made from it are cleaned out of Redis."""
    return uuid4().hex


async def test_enqueued_job_writes_its_interaction(
    runner: Runner, sessions: SessionFactory, tag: str
) -> None:
    job_id = await runner.queue.enqueue("note_run", tag)
    assert job_id
    await runner.run_queued()
    assert await runs_of(sessions, tag) == 1


async def test_same_job_id_enqueued_twice_runs_once(
    runner: Runner, sessions: SessionFactory, tag: str
) -> None:
    first = await runner.queue.enqueue("note_run", tag, job_id=f"import:{tag}")
    second = await runner.queue.enqueue("note_run", tag, job_id=f"import:{tag}")
    assert first == second == f"import:{tag}"
    await runner.run_queued()
    assert await runs_of(sessions, tag) == 1


async def test_finished_job_id_can_be_enqueued_again(
    runner: Runner, sessions: SessionFactory, tag: str
) -> None:
    await runner.queue.enqueue("note_run", tag, job_id=f"send:{tag}")
    await runner.run_queued()
    await runner.queue.enqueue("note_run", tag, job_id=f"send:{tag}")
    await runner.run_queued()
    assert await runs_of(sessions, tag) == 2


async def test_failing_job_is_retried_until_it_succeeds(
    runner: Runner, sessions: SessionFactory, tag: str, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = await runner.queue.enqueue("fail_twice_then_note", tag, job_id=f"flaky:{tag}")
    await runner.run_queued()
    assert await runs_of(sessions, tag) == 3
    messages = [r.getMessage() for r in caplog.records]
    retried = [m for m in messages if job_id in m and "retrying" in m]
    assert len(retried) == 2
    assert not [m for m in messages if "failed after" in m]


async def test_job_failing_every_try_is_reported_with_its_id(
    runner: Runner, sessions: SessionFactory, tag: str, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = await runner.queue.enqueue("always_fail", tag, job_id=f"doomed:{tag}")
    await runner.run_queued()
    assert await runs_of(sessions, tag) == MAX_TRIES
    reports = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and f"{job_id} (always_fail) failed after" in r.getMessage()
    ]
    assert len(reports) == 1
    assert f"after {MAX_TRIES} tries" in reports[0].getMessage()


async def test_unknown_job_name_is_refused_at_enqueue(runner: Runner) -> None:
    with pytest.raises(UnknownJobError, match="no job function named 'send_fax'"):
        await runner.queue.enqueue("send_fax", 1)


def gated_runner(sessions: SessionFactory, **options: Any) -> tuple[InProcessJobs, dict[str, Any]]:
    context: dict[str, Any] = {
        "sessions": sessions,
        "started": asyncio.Event(),
        "gate": asyncio.Event(),
    }
    jobs = InProcessJobs(functions=[note_when_released], context=context, **options)
    return jobs, context


async def test_close_lets_running_job_finish_and_reports_jobs_not_started(
    sessions: SessionFactory, tag: str, caplog: pytest.LogCaptureFixture
) -> None:
    jobs, context = gated_runner(sessions, max_jobs=1, shutdown_grace_s=5)
    await jobs.start()
    running = await jobs.enqueue("note_when_released", tag)
    waiting = [await jobs.enqueue("note_when_released", tag) for _ in range(2)]
    await context["started"].wait()

    async def open_gate_soon() -> None:
        await asyncio.sleep(0.05)
        context["gate"].set()

    opener = asyncio.create_task(open_gate_soon())
    await jobs.close()
    await opener

    assert await runs_of(sessions, tag) == 1
    lost = [r.getMessage() for r in caplog.records if "not done" in r.getMessage()]
    assert len(lost) == 2
    assert all(any(job_id in message for message in lost) for job_id in waiting)
    assert not any(running in message for message in lost)


async def test_close_cancels_job_still_running_after_grace_period(
    sessions: SessionFactory, tag: str, caplog: pytest.LogCaptureFixture
) -> None:
    jobs, context = gated_runner(sessions, shutdown_grace_s=0.05)
    await jobs.start()
    job_id = await jobs.enqueue("note_when_released", tag)
    await context["started"].wait()

    await asyncio.wait_for(jobs.close(), timeout=5)

    assert await runs_of(sessions, tag) == 0
    assert any(
        job_id in r.getMessage() and "still running" in r.getMessage() for r in caplog.records
    )


async def test_enqueue_after_close_is_refused(sessions: SessionFactory) -> None:
    jobs = InProcessJobs(functions=JOBS, context={"sessions": sessions})
    await jobs.start()
    await jobs.close()
    with pytest.raises(JobQueueNotRunningError):
        await jobs.enqueue("note_run", "late")


async def test_jobs_enqueued_before_start_wait_and_then_run(
    sessions: SessionFactory, tag: str
) -> None:
    jobs = InProcessJobs(functions=JOBS, context={"sessions": sessions})
    await jobs.enqueue("note_run", tag)
    await asyncio.sleep(0.05)
    assert await runs_of(sessions, tag) == 0
    await jobs.start()
    await jobs.join()
    assert await runs_of(sessions, tag) == 1
    await jobs.close()


async def test_in_process_runner_never_runs_more_than_max_jobs_at_once() -> None:
    active = 0
    peak = 0

    async def busy(ctx: dict[str, Any]) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1

    jobs = InProcessJobs(functions=[busy], context={}, max_jobs=3)
    await jobs.start()
    for _ in range(20):
        await jobs.enqueue("busy")
    await jobs.join()
    await jobs.close()
    assert peak == 3


async def test_arq_worker_gives_jobs_the_hub_context(
    database_url: str, sessions: SessionFactory, redis_url: str, redis_keys: str
) -> None:
    seen: dict[str, Any] = {}

    async def inspect_context(ctx: dict[str, Any]) -> None:
        seen.update(ctx)

    settings = Settings(database_url=database_url, redis_url=redis_url, _env_file=None)
    queue = ArqJobs(redis_url=redis_url, functions=[inspect_context], queue_name=redis_keys)
    await queue.start()
    job_id = await queue.enqueue("inspect_context")
    await queue.close()

    worker = build_worker(
        settings, [inspect_context], queue_name=redis_keys, burst=True, handle_signals=False
    )
    await run_worker(worker)

    assert seen["job_id"] == job_id
    assert seen["job_try"] == 1
    assert seen["settings"] is settings
    assert isinstance(seen["sessions"], async_sessionmaker)


def test_worker_command_without_redis_url_exits_with_one_line_error() -> None:
    result = CliRunner().invoke(main, ["worker"], env={"COMMHUB_REDIS_URL": ""})
    assert result.exit_code == 1
    assert "COMMHUB_REDIS_URL is not set" in result.output
    assert "Traceback" not in result.output


async def test_worker_command_serves_the_queue_and_stops_cleanly_on_sigterm(
    redis_url: str, tmp_path: Path
) -> None:
    # The real `commhub worker` takes the production queue name, so it gets a
    # Redis database of its own: it must not take jobs other tests enqueue.
    worker_redis = urlsplit(redis_url)._replace(path=f"/{WORKER_COMMAND_REDIS_DB}").geturl()
    health_key = QUEUE_NAME + HEALTH_CHECK_SUFFIX
    env = {
        **os.environ,
        "COMMHUB_REDIS_URL": worker_redis,
        "COMMHUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'commhub.db'}",
    }
    command = Path(sys.executable).with_name("commhub")
    process = await asyncio.create_subprocess_exec(
        str(command), "worker", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    redis = AsyncRedis.from_url(worker_redis)
    try:
        async with asyncio.timeout(15):
            while not await redis.exists(health_key):
                assert process.returncode is None, "the worker exited before serving"
                await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        assert b"Traceback" not in stderr
        assert not await redis.exists(health_key)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await redis.aclose()
