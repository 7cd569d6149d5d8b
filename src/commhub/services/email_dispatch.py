"""The e-mail part of dispatching: which rows a mailbox sends, and what the server's answer writes.

A mailbox sends over its SMTP connections (``connections``, one by default),
so its dispatcher has one message in flight per connection (``Mailbox.window``).
It claims a few tens ahead (``dispatch.claim_group``): after a crash those it had
not handed over yet are "in doubt" with those in flight, though they never
reached the server. SMTP keeps no list to ask, so a message in doubt stays
for a person (resend or dismiss).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import Mailbox, OutboundEmail, SendResult
from commhub.domain.interactions import Medium, Status
from commhub.models import Email, Interaction, Outbox, utcnow
from commhub.services.dispatch import Claimed, Due, RetryPolicy, StatusChange
from commhub.store import outbox as claims
from commhub.store.campaign_rows import campaign_running
from commhub.store.dialect import not_indexed


class EmailDelivery:
    """Dispatching e-mail: three tries, two and four seconds apart, for a server that is away."""

    channel = Medium.EMAIL.value
    retry = RetryPolicy(max_attempts=3)
    status_event: str | None = None

    async def due(self, session: AsyncSession, source: str, after: int, limit: int) -> list[Due]:
        rows = await session.execute(
            select(Outbox.id, Outbox.interaction_id, Outbox.key, Outbox.sender, Outbox.recipients)
            .add_columns(Email.raw)
            .outerjoin(Email, Email.interaction_id == Outbox.interaction_id)
            .where(
                Outbox.channel == self.channel,
                Outbox.source == source,
                Outbox.state == claims.QUEUED,
                Outbox.id > after,
                or_(Outbox.next_attempt_at.is_(None), Outbox.next_attempt_at <= utcnow()),
                campaign_running(),
            )
            .order_by(Outbox.id)
            .limit(limit)
        )
        return [
            Due(
                outbox_id,
                interaction_id,
                None
                if raw is None
                else OutboundEmail(
                    key=key, sender=sender, recipients=tuple(recipients["to"]), raw=raw
                ),
            )
            for outbox_id, interaction_id, key, sender, recipients, raw in rows
        ]

    async def send(self, channel: Any, message: Any) -> Any:
        mailer = cast(Mailbox, channel)
        return await mailer.send(cast(OutboundEmail, message))

    async def record_sent(
        self, session: AsyncSession, source: str, batch: Sequence[tuple[Claimed, Any]]
    ) -> list[StatusChange]:
        """Three statements per batch, whatever its size: one row at a time capped a campaign.

        Each row is written only while its claimer still holds it; the card
        entries move to "sent" only for the rows this batch settled.
        """
        if not batch:
            return []
        settled = [
            {
                "oid": item.outbox_id,
                "holder": item.holder,
                "at": result.accepted_at,
                "answer": result.reply,
                "error": "; ".join(f"{a}: {why}" for a, why in result.refused.items()) or None,
            }
            for item, result in ((i, cast(SendResult, a)) for i, a in batch)
        ]
        connection = await session.connection()
        await connection.execute(
            update(Outbox)
            .where(
                Outbox.id == bindparam("oid"),
                # Spelled out: an IN list cannot be bound once per row of an executemany.
                or_(Outbox.state == claims.SENDING, Outbox.state == claims.UNCERTAIN),
                Outbox.claimed_by == bindparam("holder"),
            )
            .values(
                state=claims.SENT,
                sent_at=bindparam("at"),
                reply=bindparam("answer"),
                last_error=bindparam("error"),
                lease_until=None,
            ),
            settled,
        )
        ids = [item.outbox_id for item, _ in batch]
        await session.execute(
            update(Interaction)
            .where(
                Interaction.id.in_(
                    select(Outbox.interaction_id).where(
                        Outbox.id.in_(ids),
                        not_indexed(Outbox.state) == claims.SENT,
                        Outbox.claimed_by.in_(sorted({item.holder for item, _ in batch})),
                    )
                ),
                Interaction.status.in_((Status.QUEUED.value, Status.UNCERTAIN.value)),
            )
            .values(status=Status.SENT.value)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
        return []

    async def record_failed(
        self, session: AsyncSession, item: Claimed, reason: str
    ) -> tuple[int, int | None] | None:
        row = await session.get(Outbox, item.outbox_id)
        if row is None or row.claimed_by != item.holder:
            return None
        if row.state not in (claims.SENDING, claims.UNCERTAIN):
            return None  # settled meanwhile by someone who knew
        row.state = claims.FAILED
        row.last_error = reason
        row.lease_until = None
        interaction = await session.get(Interaction, row.interaction_id)
        contact_id = None
        if interaction is not None:
            contact_id = interaction.contact_id
            if interaction.status in (Status.QUEUED.value, Status.UNCERTAIN.value):
                interaction.status = Status.FAILED.value
                interaction.extra = {**interaction.extra, "error": reason}
        await session.commit()
        return row.interaction_id, contact_id

    async def uncertain(self, session: AsyncSession, source: str) -> list[tuple[Claimed, datetime]]:
        return []

    async def queue_again(self, session: AsyncSession, item: Claimed) -> None:
        return None

    def lookup(self, channel: Any) -> Any | None:
        return None
