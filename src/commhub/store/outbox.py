"""The outbox's one claim mechanism, for every channel: who holds a row, until when.

A sender *claims* a row before handing it to a gateway: one ``UPDATE … WHERE
state = 'queued'`` moves it to ``sending`` with the sender's name and a lease,
so two senders (two processes, an e-mail job run twice, a sender and a
person's "resend") can never both hold it — the second finds it no longer
queued. While the hand-over runs the holder renews the lease. A lease that
runs out means the holder died mid-hand-over: the row becomes ``uncertain``
(the gateway may have it), never ``failed`` and never ``queued`` again by
itself; the gateway is asked where it can tell, else a person decides.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import and_, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.interactions import Status
from commhub.models import Interaction, Outbox, utcnow
from commhub.store.campaign_rows import (
    WITHHELD,
    WITHHELD_REASON,
    campaign_running,
    consent_holds,
)
from commhub.store.dialect import not_indexed

QUEUED: Final = "queued"
SENDING: Final = "sending"
SENT: Final = "sent"
FAILED: Final = "failed"
UNCERTAIN: Final = "uncertain"
DISMISSED: Final = "dismissed"

LEASE_S: Final = 30.0
"""How long a claim holds without renewal; holders renew every third of it."""
CUT_OFF: Final = "the hub stopped while handing it over: not known whether the gateway took it"


def holder_name(role: str) -> str:
    """This process's name for its claims: host, pid and a per-start token, then the role."""
    token = uuid.uuid4().hex[:8]
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{token}:{role}"[:100]


def request_hash(request: Mapping[str, Any]) -> str:
    """A digest of what an Idempotency-Key was used for, key order and spacing aside."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    """A row this holder now owns, with its attempt number (1 for the first hand-over)."""

    outbox_id: int
    interaction_id: int
    attempts: int


async def claim(
    session: AsyncSession,
    *,
    holder: str,
    ids: Sequence[int],
    lease_s: float = LEASE_S,
) -> dict[int, Claim]:
    """Claim those of ``ids`` still queued; commits. Rows another holder took are left out.

    A campaign's rows are taken only while it runs, and only for people who
    may still get them: those who may not are set ``withheld`` in the same
    transaction (see ``store.campaign_rows``), so no consent withdrawn before
    a message's turn is ever ignored.
    """
    if not ids:
        return {}
    now = utcnow()
    await withhold(session, ids)
    rows = await session.execute(
        update(Outbox)
        .where(Outbox.id.in_(list(ids)), not_indexed(Outbox.state) == QUEUED, campaign_running())
        .values(
            state=SENDING,
            claimed_by=holder,
            claimed_at=now,
            lease_until=now + timedelta(seconds=lease_s),
            attempts=Outbox.attempts + 1,
        )
        .returning(Outbox.id, Outbox.interaction_id, Outbox.attempts)
    )
    claims = {i: Claim(i, interaction, attempts) for i, interaction, attempts in rows}
    await session.commit()
    return claims


async def withhold(session: AsyncSession, ids: Sequence[int]) -> list[int]:
    """Set ``withheld`` those campaign rows of ``ids`` whose person may no longer get them.

    Their card entries say so. No commit. Returns those card entries (interaction ids).
    """
    withheld = list(
        await session.scalars(
            update(Outbox)
            .where(
                Outbox.id.in_(list(ids)),
                not_indexed(Outbox.state) == QUEUED,
                Outbox.campaign_id.is_not(None),
                not_(consent_holds()),
            )
            .values(state=WITHHELD, last_error=WITHHELD_REASON, next_attempt_at=None)
            .returning(Outbox.interaction_id)
        )
    )
    if withheld:
        await session.execute(
            update(Interaction)
            .where(Interaction.id.in_(withheld))
            .values(status=Status.WITHHELD.value)
        )
    return withheld


async def renew(
    session: AsyncSession, *, holder: str, ids: Sequence[int], lease_s: float = LEASE_S
) -> int:
    """Extend this holder's leases on ``ids`` still being sent; commits. How many it holds."""
    if not ids:
        return 0
    result = await session.execute(
        update(Outbox)
        .where(
            Outbox.id.in_(list(ids)),
            not_indexed(Outbox.state) == SENDING,
            Outbox.claimed_by == holder,
        )
        .values(lease_until=utcnow() + timedelta(seconds=lease_s))
    )
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


async def give_back(session: AsyncSession, *, holder: str, ids: Sequence[int]) -> int:
    """Rows this holder claimed and never handed over: queued as before the claim; commits."""
    if not ids:
        return 0
    result = await session.execute(
        update(Outbox)
        .where(
            Outbox.id.in_(list(ids)),
            not_indexed(Outbox.state) == SENDING,
            Outbox.claimed_by == holder,
        )
        .values(
            state=QUEUED,
            claimed_by=None,
            claimed_at=None,
            lease_until=None,
            attempts=Outbox.attempts - 1,
        )
    )
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def held_by(holder: str, outbox_id: Any) -> Any:
    """The condition under which a holder may still write its row's outcome.

    A row whose lease lapsed while its holder was still waiting on the
    gateway (``uncertain``, holder kept) still takes the holder's answer:
    the holder knows what the others could only guess.
    """
    return and_(
        Outbox.id == outbox_id,
        Outbox.state.in_((SENDING, UNCERTAIN)),
        Outbox.claimed_by == holder,
    )


async def release(
    session: AsyncSession, *, holder: str, outbox_id: int, reason: str, retry_at: datetime
) -> bool:
    """Give a row back to the queue for a later try (the gateway said not now). No commit."""
    result = await session.execute(
        update(Outbox)
        .where(held_by(holder, outbox_id))
        .values(
            state=QUEUED,
            last_error=reason,
            next_attempt_at=retry_at,
            claimed_by=None,
            lease_until=None,
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def lapsed(
    session: AsyncSession, *, channel: str, sources: Sequence[str], now: datetime | None = None
) -> list[Outbox]:
    """Rows of these sources whose holder stopped renewing: they turn ``uncertain``. No commit.

    Returns them, so the caller can mark their interactions and ask the gateway.
    """
    when = now or utcnow()
    rows = (
        await session.scalars(
            select(Outbox)
            .where(
                Outbox.channel == channel,
                Outbox.source.in_(list(sources)),
                Outbox.state == SENDING,
                or_(Outbox.lease_until.is_(None), Outbox.lease_until < when),
            )
            .order_by(Outbox.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for row in rows:
        row.state = UNCERTAIN
        row.last_error = CUT_OFF
        row.lease_until = None
    return list(rows)


async def listing(
    session: AsyncSession,
    *,
    states: Sequence[str],
    channel: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> Sequence[Outbox]:
    """Rows in these states, newest first, for the people who settle them."""
    query = select(Outbox).where(Outbox.state.in_(list(states)))
    if channel is not None:
        query = query.where(Outbox.channel == channel)
    if after_id is not None:
        query = query.where(Outbox.id < after_id)
    return (await session.scalars(query.order_by(Outbox.id.desc()).limit(limit))).all()
