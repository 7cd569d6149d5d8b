"""The SMS API's bodies and answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class SmsPreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=10_000)


class SmsPreviewOut(BaseModel):
    encoding: str = Field(description="gsm7, or ucs2 when any character is outside GSM 03.38")
    characters: int
    units: int = Field(description="GSM-7 septets (extension characters count 2) or UTF-16 units")
    segments: int
    per_segment: int = Field(description="Units one segment holds: 160/70 alone, 153/67 joined")
    remaining: int = Field(description="Units still free in the last segment")
    max_segments: int


class SmsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=10_000)
    to: str | None = Field(default=None, max_length=40, description="A number in any format")
    contact_id: int | None = Field(default=None, description="Texts their first phone number")
    sender: str | None = Field(
        default=None, max_length=40, description="One of our numbers; its gateway sends"
    )
    purpose: str | None = Field(
        default=None, max_length=40, description="transactional, marketing…: picks the gateway"
    )


class SmsOut(BaseModel):
    id: int = Field(description="The interaction's id")
    key: str
    state: str = Field(
        description="Outbox: queued, sending, sent, failed, uncertain (the hand-over got no "
        "answer: it may have been sent; the gateway or a person settles it) or dismissed"
    )
    status: str = Field(
        description="Delivery: queued, sent, delivered, undelivered, failed, uncertain"
    )
    gateway: str
    sender: str
    recipient: str
    contact_id: int | None
    text: str
    encoding: str
    segments: int
    reason: str | None = Field(description="Why it failed, was not delivered or is uncertain")
    attempts: int
    created_at: datetime
    sent_at: datetime | None
