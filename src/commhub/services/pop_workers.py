"""Screen pops, built beside the filing writer and never behind it.

An offer (a phone started ringing) goes to a few workers, and only when the
operator at that extension has the live feed open; the writer waits for them
a moment (``filing.POP_FIRST_S``), so the two do not share the database's time
at the moment the operator is waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from commhub.channels import CallOffered
from commhub.services import live
from commhub.services.database import Database
from commhub.services.filing import TRANSIENT
from commhub.services.screen_pop import screen_pop
from commhub.store import calls as store

log = logging.getLogger(__name__)

OFFER_QUEUE: Final = 1_000
POP_WORKERS: Final = 4


class PopWorkers:
    """Take :class:`CallOffered` events and push each pop to its operator's live feed."""

    def __init__(
        self, db: Database, feed: live.LiveFeed, *, region: str, create_unknown: bool
    ) -> None:
        self._db = db
        self._feed = feed
        self._region = region
        self._create_unknown = create_unknown
        self._offers: asyncio.Queue[CallOffered] = asyncio.Queue(maxsize=OFFER_QUEUE)
        self._popping = 0
        self._done = asyncio.Event()
        self._done.set()
        self._tasks: list[asyncio.Task[None]] = []

    def offer(self, event: CallOffered) -> None:
        if not self._feed.anyone:
            return
        try:
            self._offers.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("screen pop for %s skipped: pop workers behind", event.extension)
            return
        self._popping += 1
        self._done.clear()

    def busy(self) -> asyncio.Event | None:
        """While pops are being built, the event that is set when they are done."""
        return self._done if self._popping else None

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop(), name=f"screen pop {i}") for i in range(POP_WORKERS)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _loop(self) -> None:
        while True:
            offer = await self._offers.get()
            try:
                await self._pop(offer)
            except TRANSIENT as exc:
                log.error("screen pop for extension %s failed: %s", offer.extension, exc)
            except Exception:
                # The call is still filed by the writer; only this pop is lost, and said so.
                log.exception("screen pop for extension %s failed", offer.extension)
            finally:
                self._popping -= 1
                if not self._popping:
                    self._done.set()

    async def _pop(self, offer: CallOffered) -> None:
        async with self._db() as session:
            users = await store.users_by_extension(session, [offer.extension])
            user_id = users.get(offer.extension)
            if user_id is None or not self._feed.listening(user_id):
                return
            if offer.call.detail.get("reconciled"):
                # Only a call first seen in a PBX's list after a restart can be one the log
                # already holds as over (a live call is new): never pop it again.
                stored = await store.calls_by_external_id(session, [offer.call.external_id])
                row = stored.get(offer.call.external_id)
                if row is not None and row.ended_at is not None:
                    return
            payload = await screen_pop(
                session,
                offer.call,
                offer.extension,
                default_region=self._region,
                create_unknown=self._create_unknown,
            )
        self._feed.publish(live.CALL_OFFERED, payload, users=[user_id])
