"""The e-mail part of dispatching: which rows a mailbox sends, and what the server's answer writes.

A mailbox sends over its SMTP connections (``connections``, one by default),
so its dispatcher has one message in flight per connection (``Mailbox.window``):
one more claimed would wait for a connection and, after a crash, be "in doubt"
though it never reached the server. SMTP keeps no list to ask,
so a message in doubt stays for a person (resend or dismiss).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import Mailbox, OutboundEmail, SendResult
from commhub.domain.interactions import Medium, Status
from commhub.models import Email, Interaction, Outbox, utcnow
from commhub.services.dispatch import Claimed, Due, RetryPolicy, StatusChange
from commhub.store import emails as store
from commhub.store import outbox as claims
from commhub.store.campaign_rows import campaign_running


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
        for item, accepted in batch:
            result = cast(SendResult, accepted)
            refused = "; ".join(f"{a}: {why}" for a, why in result.refused.items())
            done = await session.execute(
                update(Outbox)
                .where(claims.held_by(item.holder, item.outbox_id))
                .values(
                    state=claims.SENT,
                    sent_at=result.accepted_at,
                    reply=result.reply,
                    last_error=refused or None,
                    lease_until=None,
                )
                .returning(Outbox.interaction_id)
            )
            interaction_id = done.scalar()
            if interaction_id is None:
                continue  # settled meanwhile by someone who knew
            await store.set_status(
                session,
                interaction_id,
                Status.SENT.value,
                only_from=[Status.QUEUED.value, Status.UNCERTAIN.value],
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
