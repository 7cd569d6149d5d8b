"""Request and response bodies of the deals, pipelines and funnel API.

Amounts travel as strings ("1500.00") beside their currency: a JSON number
would pass through a float on many clients, and a float amount is refused.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictStr

from commhub.domain.deals import DealSource
from commhub.web.api.schemas import Moment, Strict

Amount = StrictStr
"""A decimal amount as a string; numbers are refused so no float ever rounds it."""


class MoneyOut(BaseModel):
    amount: str
    currency: str


class DealQuery(Strict):
    pipeline_id: int | None = Field(default=None, ge=1)
    stage_id: int | None = Field(default=None, ge=1)
    owner_id: int | None = Field(default=None, ge=1)
    contact_id: int | None = Field(default=None, ge=1)
    company_id: int | None = Field(default=None, ge=1)
    source: DealSource | None = None
    state: Literal["open", "won", "lost"] | None = None
    q: str | None = Field(default=None, max_length=200)
    overdue: bool = Field(default=False, description="Only deals whose next step is overdue.")
    reached_stage_id: int | None = Field(
        default=None, ge=1, description="Funnel drill-down: deals that reached this stage."
    )
    since: Moment | None = None
    until: Moment | None = None
    outcome: Literal["reached", "moved_on", "won"] = "reached"
    sort: str = "updated"
    order: Literal["asc", "desc"] = "desc"
    offset: int = Field(default=0, ge=0, le=1_000_000)
    limit: int = Field(default=50, ge=1, le=200)


class DealCreate(Strict):
    title: str = Field(min_length=1, max_length=300)
    amount: Amount = "0"
    currency: str = Field(min_length=1, max_length=3)
    contact_id: int | None = Field(default=None, ge=1)
    company_id: int | None = Field(default=None, ge=1)
    owner_id: int | None = Field(default=None, ge=1, description="Default: the caller.")
    source: DealSource = DealSource.MANUAL
    pipeline_id: int | None = Field(default=None, ge=1, description="Default: the default one.")
    stage_id: int | None = Field(default=None, ge=1, description="Default: the first open stage.")
    expected_close_on: date | None = None
    next_step: str = Field(default="", max_length=500)
    next_step_due_on: date | None = None
    notes: str = Field(default="", max_length=20000)


class DealUpdate(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    amount: Amount | None = None
    currency: str | None = Field(default=None, min_length=1, max_length=3)
    contact_id: int | None = Field(default=None, ge=0, description="0 clears it.")
    company_id: int | None = Field(default=None, ge=0, description="0 clears it.")
    owner_id: int | None = Field(default=None, ge=0, description="0 leaves it without an owner.")
    source: DealSource | None = None
    expected_close_on: date | None = None
    next_step: str | None = Field(default=None, max_length=500)
    next_step_due_on: date | None = None
    notes: str | None = Field(default=None, max_length=20000)
    lost_reason: str | None = Field(default=None, max_length=500)


class DealMove(Strict):
    stage_id: int = Field(ge=1)
    lost_reason: str | None = Field(default=None, max_length=500)


class DealBulk(Strict):
    ids: list[int] = Field(min_length=1, max_length=500)
    owner_id: int | None = Field(default=None, ge=0, description="0 leaves them without owner.")
    stage_id: int | None = Field(default=None, ge=1)


class BulkDone(BaseModel):
    changed: int


class StageRef(BaseModel):
    id: int
    name: str
    preset: str | None
    kind: str


class DealOut(BaseModel):
    id: int
    title: str
    amount: str
    currency: str
    pipeline_id: int
    stage: StageRef
    contact_id: int | None
    contact_name: str | None
    company_id: int | None
    owner_id: int | None
    owner_name: str | None
    source: str
    expected_close_on: date | None
    next_step: str
    next_step_due_on: date | None
    lost_reason: str
    notes: str
    stage_entered_at: datetime
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DealList(BaseModel):
    items: list[DealOut]
    total: int


class StageChangeOut(BaseModel):
    from_stage_id: int | None
    to_stage_id: int
    changed_at: datetime
    changed_by_id: int | None


class DealDetail(DealOut):
    history: list[StageChangeOut]
    invoices: list[InvoiceOut]


class StageCount(StageRef):
    deals: int = Field(description="How many deals stand in it now.")


class PipelineOut(BaseModel):
    id: int
    name: str
    is_default: bool
    auto_create: dict[str, bool]
    won_when_paid: bool
    stages: list[StageCount]


class PipelineList(BaseModel):
    items: list[PipelineOut]


class FunnelQuery(Strict):
    pipeline_id: int | None = Field(default=None, ge=1)
    since: date = Field(description="First day, in the caller's time zone.")
    until: date = Field(description="Last day (inclusive), in the caller's time zone.")
    owner_id: int | None = Field(default=None, ge=1)
    source: DealSource | None = None


class FunnelStageOut(BaseModel):
    stage_id: int
    name: str
    preset: str | None
    kind: str
    reached: int
    moved_on: int
    won: int
    to_next: str | None = Field(description='Per cent that went further ("62.5").')
    to_won: str | None = Field(description="Per cent that were won.")
    amounts: list[MoneyOut] = Field(description="Sums of the deals that reached it.")
    median_days: str | None


class LostReason(BaseModel):
    reason: str
    deals: int


class FunnelOut(BaseModel):
    pipeline_id: int
    since: datetime
    until: datetime
    stages: list[FunnelStageOut]
    lost_reasons: list[LostReason]


class StageIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["open", "won", "lost"] = "open"


class PipelineCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    stages: list[StageIn] = Field(min_length=1, max_length=50)


class PipelineUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    is_default: bool | None = None
    auto_create: dict[str, bool] | None = Field(
        default=None, description="Open a deal for an inbound call or e-mail: {call, email}."
    )
    won_when_paid: bool | None = None


class StageUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: Literal["open", "won", "lost"] | None = None


class StageOrder(Strict):
    stage_ids: list[int] = Field(min_length=1, max_length=50)


class StageRemoval(Strict):
    move_to: int | None = Field(default=None, ge=1, description="Where its deals go.")


class StageRemoved(BaseModel):
    moved: int = Field(description="How many deals moved to the target stage.")


class InvoiceCreate(Strict):
    number: str = Field(min_length=1, max_length=100)
    amount: Amount
    currency: str | None = Field(
        default=None, min_length=1, max_length=3, description="Default: the deal's currency."
    )
    issued_on: date
    due_on: date


class PaymentCreate(Strict):
    amount: Amount
    paid_on: date


class PaymentOut(BaseModel):
    id: int
    amount: str
    paid_on: date


class InvoiceOut(BaseModel):
    id: int
    deal_id: int
    number: str
    amount: str
    currency: str
    issued_on: date
    due_on: date
    paid_amount: str
    owed: str
    paid_in_full: bool
    paid_on: date | None
    payments: list[PaymentOut] = Field(default_factory=list)


class ReceivablesQuery(Strict):
    owner_id: int | None = Field(default=None, ge=1)


class ReceivableOut(BaseModel):
    invoice_id: int
    number: str
    deal_id: int
    deal_title: str
    owner_id: int | None
    owner_name: str | None
    owed: MoneyOut
    due_on: date
    days_overdue: int
    ageing: str = Field(description="not_due, 1_30, 31_60 or 60_plus (days past due).")


class ReceivablesOut(BaseModel):
    rows: list[ReceivableOut]
    buckets: dict[str, list[MoneyOut]]
    total: list[MoneyOut]


class BoardQuery(Strict):
    pipeline_id: int | None = Field(default=None, ge=1, description="Default: the default one.")
    owner_id: int | None = Field(default=None, ge=1)
    source: DealSource | None = None
    q: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=20, ge=1, le=100, description="Cards per column.")


class ColumnQuery(Strict):
    cursor: str | None = Field(default=None, max_length=200, description="A next_cursor.")
    owner_id: int | None = Field(default=None, ge=1)
    source: DealSource | None = None
    q: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=20, ge=1, le=100)


class ColumnOut(BaseModel):
    stage: StageRef
    count: int
    sums: list[MoneyOut] = Field(description="Amounts of every deal in it, per currency.")
    deals: list[DealOut] = Field(description="The most recently active first.")
    next_cursor: str | None


class BoardOut(BaseModel):
    pipeline_id: int
    columns: list[ColumnOut]
