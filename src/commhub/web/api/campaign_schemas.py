"""Request and response bodies of the campaigns API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from commhub.domain.campaigns import CampaignChannel, Schedule
from commhub.domain.consent import Purpose
from commhub.web.api.schemas import Moment, Strict

Minute = Field(default=None, ge=0, le=24 * 60, description="Minutes after local midnight.")


class CampaignFields(Strict):
    channel: CampaignChannel = CampaignChannel.EMAIL
    purpose: Purpose = Purpose.MARKETING
    segment_id: int | None = Field(default=None, ge=1)
    email_template_id: int | None = Field(default=None, ge=1)
    sms_template_id: int | None = Field(default=None, ge=1)
    mailbox: str | None = Field(default=None, max_length=100)
    sms_gateway: str | None = Field(default=None, max_length=100)
    sms_sender: str | None = Field(default=None, max_length=50)
    schedule: Schedule = Schedule.NOW
    start_at: Moment | None = None
    window_from: int | None = Minute
    window_to: int | None = Minute
    rate: float | None = Field(
        default=None, gt=0, le=1000, description="Messages per second; none: the gateway's pace."
    )
    bounce_limit: float = Field(default=5.0, ge=0, le=100)
    complaint_limit: float = Field(default=0.1, ge=0, le=100)


class CampaignCreate(CampaignFields):
    name: str = Field(min_length=1, max_length=200)


class CampaignUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    channel: CampaignChannel | None = None
    purpose: Purpose | None = None
    segment_id: int | None = Field(default=None, ge=1)
    email_template_id: int | None = Field(default=None, ge=1)
    sms_template_id: int | None = Field(default=None, ge=1)
    mailbox: str | None = Field(default=None, max_length=100)
    sms_gateway: str | None = Field(default=None, max_length=100)
    sms_sender: str | None = Field(default=None, max_length=50)
    schedule: Schedule | None = None
    start_at: Moment | None = None
    window_from: int | None = Minute
    window_to: int | None = Minute
    rate: float | None = Field(default=None, gt=0, le=1000)
    bounce_limit: float | None = Field(default=None, ge=0, le=100)
    complaint_limit: float | None = Field(default=None, ge=0, le=100)


class PauseBody(Strict):
    reason: str = Field(default="", max_length=500)


class Counts(BaseModel):
    recipients: int
    excluded: int
    pending: int
    queued: int
    sending: int
    sent: int
    delivered: int
    failed: int
    bounced: int
    complained: int
    withheld: int
    cancelled: int
    uncertain: int
    dismissed: int
    """Once in doubt, settled by a person as arrived (or not to be sent again)."""
    replied: int


class CampaignOut(BaseModel):
    id: int
    name: str
    state: str
    state_reason: str
    channel: str
    purpose: str
    segment_id: int | None
    email_template_id: int | None
    sms_template_id: int | None
    mailbox: str | None
    sms_gateway: str | None
    sms_sender: str | None
    schedule: str
    start_at: datetime | None
    window_from: int | None
    window_to: int | None
    rate: float | None
    bounce_limit: float
    complaint_limit: float
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: Counts | None = None


class CampaignList(BaseModel):
    items: list[CampaignOut]


class RecipientOut(BaseModel):
    contact_id: int
    name: str
    channel: str
    address: str
    state: str
    reason: str
    sent_at: datetime | None


class RecipientList(BaseModel):
    items: list[RecipientOut]
    next_after: int | None


class RecipientQuery(Strict):
    state: str | None = Field(default=None, max_length=20)
    after: int = Field(default=-1, ge=-1)
    limit: int = Field(default=100, ge=1, le=1000)
