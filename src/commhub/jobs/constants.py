"""Job-queue names and defaults shared by the in-process runner and the arq worker.

arq keeps each job under its own fixed key prefixes (``arq:job:``,
``arq:in-progress:``, ``arq:retry:``, ``arq:result:`` in ``arq.constants``);
commhub adds only the queue's sorted set and the worker's health-check key.
"""

from __future__ import annotations

from typing import Final

QUEUE_NAME: Final = "commhub:queue"
"""The Redis sorted set arq workers take commhub's jobs from."""

HEALTH_CHECK_SUFFIX: Final = ":health-check"
"""Appended to the queue name for the key a running worker refreshes (arq's convention)."""

MAX_CONCURRENT_JOBS: Final = 10
"""Jobs one process runs at once; more wait their turn, none is dropped."""

MAX_TRIES: Final = 3
"""Tries per job before it is reported as failed (the first run counts as one)."""

RETRY_DELAY_S: Final = 2.0
"""Wait before the first retry; each later retry waits twice as long as the one before."""

JOB_TIMEOUT_S: Final = 3600.0
"""The longest one try may run: a large spreadsheet import fits, a stuck job does not."""

SHUTDOWN_GRACE_S: Final = 10.0
"""How long the in-process runner lets running jobs finish when the hub stops."""

POLL_DELAY_S: Final = 0.5
"""How often an arq worker looks for due jobs (arq's own default)."""
