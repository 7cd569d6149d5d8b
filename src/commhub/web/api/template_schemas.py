"""Request and response bodies of the message templates API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from commhub.web.api.schemas import Strict

TEXT = 200_000


class TemplateIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    channel: Literal["email", "sms"]
    language: str = Field(default="", max_length=10)
    subject: str = Field(default="", max_length=500)
    text: str = Field(max_length=TEXT)
    html: str | None = Field(default=None, max_length=TEXT)


class TemplateUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    language: str | None = Field(default=None, max_length=10)
    subject: str | None = Field(default=None, max_length=500)
    text: str | None = Field(default=None, max_length=TEXT)
    html: str | None = Field(default=None, max_length=TEXT)


class TemplateOut(BaseModel):
    id: int
    name: str
    channel: str
    language: str
    subject: str
    text: str
    html: str | None
    stock_key: str | None
    created_at: datetime
    updated_at: datetime


class TemplateList(BaseModel):
    items: list[TemplateOut]


class PreviewIn(TemplateIn):
    name: str = Field(default="preview", min_length=1, max_length=200)
    contact_id: int | None = Field(
        default=None, ge=1, description="Whose values to use; none: empty values."
    )
    virtual: bool = Field(
        default=False, description="Use a made-up client (in the template's language)."
    )


class SmsShapeOut(BaseModel):
    encoding: str
    segments: int
    units: int


class PreviewOut(BaseModel):
    subject: str
    text: str
    html: str | None
    sms: SmsShapeOut | None
    missing: list[str] = Field(description="Variables these values lack: written empty.")


class GapsIn(TemplateIn):
    name: str = Field(default="preview", min_length=1, max_length=200)
    segment_id: int = Field(ge=1)
    limit: int = Field(default=50, ge=1, le=500)


class GapOut(BaseModel):
    contact_id: int
    name: str
    missing: list[str]


class GapsOut(BaseModel):
    members: int
    scanned: int = Field(description="The first members looked at (at most 5,000).")
    count: int = Field(description="How many of those scanned lack a value the template uses.")
    people: list[GapOut]


class TestIn(PreviewIn):
    to: str = Field(min_length=3, max_length=320, description="Your e-mail address or number.")
    mailbox: str | None = Field(default=None, max_length=100)


class TestOut(BaseModel):
    outbox_id: int
    interaction_id: int
    state: str


class StockOut(BaseModel):
    channel: str
    key: str
    language: str
    name: str
    subject: str | None
    text: str
    html: str | None


class StockList(BaseModel):
    items: list[StockOut]


class CopyIn(Strict):
    channel: Literal["email", "sms"]
    key: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$")
    language: str = Field(min_length=2, max_length=10, pattern=r"^[a-z]{2}(-[A-Za-z]{2})?$")
