"""What happens to outbox rows in doubt: found by lapsed leases, settled by a gateway or a person.

Every channel's dispatcher claims rows through ``store/outbox.py``; this module
holds what is the same for all of them once a claim lapses: the row and its
card entry say "may have been sent" with the reason, and stay so until the
gateway answers (a lookup, a delivery report) or a person resends or
dismisses the row. Nothing here resends or fails a row by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.interactions import Status
from commhub.models import Interaction, Outbox, utcnow
from commhub.services.database import Database
from commhub.services.errors import Conflict, InvalidInput, NotFound
from commhub.store import outbox as store
from commhub.store.engine import SessionFactory

log = logging.getLogger(__name__)

WAITING = (Status.QUEUED.value,)
"""Interaction statuses a send's outcome may overwrite (reports move it on from there)."""


async def mark_lapsed(
    sessions: SessionFactory, *, channel: str, sources: Sequence[str]
) -> list[int]:
    """Turn the rows whose holder died mid-hand-over ``uncertain``; their ids. Commits."""
    async with sessions() as session:
        rows = await store.lapsed(session, channel=channel, sources=sources)
        if not rows:
            return []
        await set_interaction_status(
            session, [r.interaction_id for r in rows], Status.UNCERTAIN.value, only_from=WAITING
        )
        await session.commit()
    log.error(
        "%d %s messages were cut off mid-hand-over and are now uncertain: %s",
        len(rows),
        channel,
        store.CUT_OFF,
    )
    return [row.id for row in rows]


async def hold_in_doubt(
    sessions: SessionFactory, *, holder: str, outbox_id: int, reason: str
) -> bool:
    """The holder's hand-over got no answer: the row is uncertain, with why. Commits.

    The holder's name stays on it, so the gateway's later word (a lookup, a
    report) settles it; nothing resends it by itself.
    """
    async with sessions() as session:
        result = await session.execute(
            update(Outbox)
            .where(store.held_by(holder, outbox_id))
            .values(state=store.UNCERTAIN, last_error=reason, lease_until=None)
            .returning(Outbox.interaction_id)
        )
        interaction_id = result.scalar()
        if interaction_id is None:
            await session.rollback()
            return False
        await set_interaction_status(
            session, [interaction_id], Status.UNCERTAIN.value, only_from=WAITING
        )
        await session.commit()
    log.warning("outbox %s is uncertain: %s", outbox_id, reason)
    return True


async def set_interaction_status(
    session: AsyncSession, interaction_ids: Sequence[int], status: str, *, only_from: Sequence[str]
) -> None:
    if interaction_ids:
        await session.execute(
            update(Interaction)
            .where(Interaction.id.in_(list(interaction_ids)), Interaction.status.in_(only_from))
            .values(status=status)
        )


async def listing(
    db: Database, *, state: str, channel: str | None, after_id: int | None, limit: int
) -> Sequence[Outbox]:
    """Rows in ``state`` (of one channel, or all), newest first."""
    async with db() as session:
        return await store.listing(
            session, states=[state], channel=channel, after_id=after_id, limit=limit
        )


async def in_doubt(db: Database, *, limit: int) -> Sequence[Outbox]:
    """The uncertain rows, newest first: each waits for a person to resend or dismiss it."""
    async with db() as session:
        return await store.listing(session, states=[store.UNCERTAIN], limit=limit)


async def resend(db: Database, outbox_id: int, *, user_id: int) -> Outbox:
    """A person decided an uncertain row did not go: queue it once more.

    The caller tells the row's dispatcher (``Hub.dispatch_now``) once this returns.
    """
    async with db.begin() as session:
        row = await _uncertain_row(session, outbox_id)
        row.state = store.QUEUED
        row.next_attempt_at = None
        row.claimed_by = None
        row.resolved_by = user_id
        row.resolved_at = utcnow()
        row.last_error = f"sent again by a person after: {row.last_error or store.CUT_OFF}"
        await set_interaction_status(
            session, [row.interaction_id], Status.QUEUED.value, only_from=(Status.UNCERTAIN.value,)
        )
    log.info("outbox %s: resent by user %s", row.key, user_id)
    return row


async def dismiss(db: Database, outbox_id: int, *, user_id: int) -> Outbox:
    """A person decided to leave an uncertain row as it is: it drops off the list."""
    async with db.begin() as session:
        row = await _uncertain_row(session, outbox_id)
        row.state = store.DISMISSED
        row.resolved_by = user_id
        row.resolved_at = utcnow()
    log.info("outbox %s: dismissed by user %s", row.key, user_id)
    return row


async def reused_key(session: AsyncSession, key: str, fingerprint: str) -> Outbox | None:
    """The row an idempotency key already made; refused if it was made for another request."""
    existing = await session.scalar(select(Outbox).where(Outbox.key == key))
    if existing is None:
        return None
    if fingerprint and existing.request_hash and existing.request_hash != fingerprint:
        raise InvalidInput(
            "Idempotency-Key", "this key was already used for a different request: use a new key"
        )
    return existing


async def _uncertain_row(session: AsyncSession, outbox_id: int) -> Outbox:
    row = await session.get(Outbox, outbox_id, with_for_update=True)
    if row is None:
        raise NotFound("outbox message", outbox_id)
    if row.state != store.UNCERTAIN:
        raise Conflict("state", f"the message is {row.state}, not uncertain: nothing to settle")
    return row
