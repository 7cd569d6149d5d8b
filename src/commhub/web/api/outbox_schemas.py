"""The outbox as the API shows it: messages waiting, in doubt, sent or failed."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from commhub.web.api.schemas import Strict

OutboxState = Literal["queued", "sending", "sent", "failed", "uncertain", "dismissed"]


class OutboxQuery(Strict):
    state: OutboxState = Field(
        default="uncertain",
        description="uncertain (the default): messages a crash cut off mid-hand-over, which "
        "may have been sent and wait for a person to resend or dismiss them.",
    )
    channel: Literal["email", "sms"] | None = None
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


class OutboxItem(BaseModel):
    id: int
    key: str
    channel: str
    source: str = Field(description="The mailbox or SMS gateway that sends it.")
    state: OutboxState
    interaction_id: int
    contact_id: int | None
    recipients: list[str]
    attempts: int
    reason: str | None = Field(description="Why it is in this state, in words.")
    created_at: datetime
    claimed_at: datetime | None = Field(description="When the last hand-over began.")
    sent_at: datetime | None
    resolved_by: int | None = Field(description="Who resent or dismissed it.")
    resolved_at: datetime | None


class OutboxPage(BaseModel):
    items: list[OutboxItem]
    next_cursor: str | None
