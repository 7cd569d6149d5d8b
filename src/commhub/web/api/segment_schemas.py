"""Request and response bodies of the segments API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from commhub.web.api.schemas import Strict

RULES_DOC = (
    'A rule tree: {"all": [...]}, {"any": [...]}, {"not": rule} or a condition '
    '{"field", "op", "value"}; see docs/segments.md.'
)


class SegmentIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["dynamic", "static"] = "dynamic"
    rules: dict[str, Any] | None = Field(default=None, description=RULES_DOC)
    description: str = Field(default="", max_length=2000)


class SegmentUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    rules: dict[str, Any] | None = Field(default=None, description=RULES_DOC)
    description: str | None = Field(default=None, max_length=2000)


class SegmentFromImport(Strict):
    name: str = Field(min_length=1, max_length=200)
    import_id: int = Field(ge=1)


class PreviewIn(Strict):
    rules: dict[str, Any] = Field(description=RULES_DOC)
    limit: int = Field(default=20, ge=0, le=100)


class MemberOut(BaseModel):
    id: int
    name: str
    company: str | None
    phone: str | None
    email: str | None


class PreviewOut(BaseModel):
    count: int
    sample: list[MemberOut]


class SegmentOut(BaseModel):
    id: int
    name: str
    kind: str
    rules: dict[str, Any] | None
    description: str
    import_id: int | None
    count: int | None = None
    created_at: datetime
    updated_at: datetime


class SegmentList(BaseModel):
    items: list[SegmentOut]


class Selection(Strict):
    contact_ids: list[int] = Field(min_length=1, max_length=10_000)


class MemberCount(BaseModel):
    count: int
