"""The background job behind an uploaded import: wait for its turn, then run it.

The ``imports`` row is the record a manager watches (status, place in the
queue, counters, progress, errors file); the job only drives it. How an
import ends is recorded on the row, so the job itself never fails: a
replayed job for an import that already left the queue does nothing.
"""

from __future__ import annotations

from typing import Any

from commhub.config import Settings
from commhub.services.import_runs import INPROCESS, WORKER, run_when_queued_turn_comes
from commhub.store.engine import SessionFactory


async def run_import(ctx: dict[str, Any], import_id: int) -> None:
    """Run import ``import_id`` when its turn comes (and any queued import this process takes)."""
    sessions: SessionFactory = ctx["sessions"]
    settings: Settings = ctx["settings"]
    # arq gives its jobs a "redis" connection; the in-process runner has none.
    kind = WORKER if "redis" in ctx else INPROCESS
    await run_when_queued_turn_comes(sessions, settings, import_id, kind=kind)
