"""Invoices on deals, their payments, and what is owed (receivables).

A payment is recorded once per key (a resent form or a retried request
records nothing twice) and never more than is still owed. When the last
payment settles every invoice of a deal whose pipeline says so, the deal
moves to its pipeline's first won stage in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.deals import StageKind, check_invoice_dates, read_invoice_number
from commhub.domain.money import Money, read_amount, read_currency, totals
from commhub.domain.receivables import Ageing, ageing, check_payment, days_overdue
from commhub.models import Deal, Invoice, Payment, Pipeline
from commhub.services import live
from commhub.services.database import Database
from commhub.services.deal_console import choices
from commhub.services.deal_views import Names, names_for
from commhub.services.deals import Actor, Moves, check_visible, enter_stage
from commhub.services.errors import Conflict, NotFound
from commhub.store import invoices as store
from commhub.store import pipelines as pipeline_store


@dataclass(frozen=True, slots=True)
class InvoiceDraft:
    number: str
    amount: Decimal | str
    issued_on: date
    due_on: date
    currency: str | None = None
    """Defaults to the deal's currency."""


async def add_invoice(db: Database, deal_id: int, draft: InvoiceDraft, actor: Actor) -> Invoice:
    number = read_invoice_number(draft.number)
    check_invoice_dates(draft.issued_on, draft.due_on)
    async with db.begin() as session:
        deal = await session.get(Deal, deal_id)
        if deal is None:
            raise NotFound("deal", deal_id)
        await check_visible(session, deal, actor)
        currency = read_currency(draft.currency or deal.currency)
        if await store.by_number(session, number) is not None:
            raise Conflict("number", f"invoice {number} already exists")
        invoice = Invoice(
            deal_id=deal.id,
            number=number,
            amount=read_amount(draft.amount, currency, zero=False),
            currency=currency,
            issued_on=draft.issued_on,
            due_on=draft.due_on,
            paid_amount=Decimal(0),
            paid_in_full=False,
            created_by_id=actor.user_id,
        )
        session.add(invoice)
        await session.flush()
    return invoice


async def record_payment(
    db: Database,
    invoice_id: int,
    *,
    amount: Decimal | str,
    paid_on: date,
    key: str | None,
    actor: Actor,
    feed: live.LiveFeed | None = None,
) -> Invoice:
    """Add a payment to an invoice; with ``key``, a second call with it changes nothing."""
    moves = Moves()
    try:
        async with db.begin() as session:
            invoice = await session.get(Invoice, invoice_id, with_for_update=True)
            if invoice is None:
                raise NotFound("invoice", invoice_id)
            deal = await session.get(Deal, invoice.deal_id)
            assert deal is not None
            await check_visible(session, deal, actor)
            if key is not None and await store.payment_by_key(session, key) is not None:
                return invoice
            paid = read_amount(amount, invoice.currency)
            check_payment(paid, invoice.amount - invoice.paid_amount)
            session.add(
                Payment(
                    invoice_id=invoice.id,
                    amount=paid,
                    paid_on=paid_on,
                    key=key,
                    recorded_by_id=actor.user_id,
                )
            )
            invoice.paid_amount = invoice.paid_amount + paid
            if invoice.paid_amount >= invoice.amount:
                invoice.paid_in_full = True
                invoice.paid_on = paid_on
            await session.flush()
            await _won_when_paid(session, deal, actor, moves)
    except IntegrityError:
        # The same key raced in from another request: the first one recorded it.
        async with db() as session:
            found = await session.get(Invoice, invoice_id)
            if found is None:
                raise NotFound("invoice", invoice_id) from None
            return found
    moves.tell(feed)
    return invoice


async def _won_when_paid(session: AsyncSession, deal: Deal, actor: Actor, moves: Moves) -> None:
    if deal.closed_at is not None:
        return
    pipeline = await session.get(Pipeline, deal.pipeline_id)
    if pipeline is None or not pipeline.won_when_paid:
        return
    if any(not i.paid_in_full for i in await store.of_deal(session, deal.id)):
        return
    for stage in await pipeline_store.stages_of(session, deal.pipeline_id):
        if stage.kind == StageKind.WON.value:
            await enter_stage(session, deal, stage, actor, moves)
            return


@dataclass(frozen=True, slots=True)
class Receivable:
    invoice: Invoice
    deal: Deal
    owed: Money
    days_overdue: int
    ageing: Ageing


@dataclass(frozen=True, slots=True)
class Receivables:
    rows: list[Receivable]
    """Overdue first (the longest first), then not yet due."""
    buckets: dict[Ageing, list[Money]]
    """Owed per ageing bucket, a sum per currency."""
    by_owner: dict[int | None, list[Money]]
    total: list[Money]
    names: Names


async def receivables(
    db: Database, actor: Actor, *, today: date, owner_id: int | None = None
) -> Receivables:
    """What is owed on unpaid invoices, aged against the viewer's ``today``."""
    async with db() as session:
        owed = await store.unpaid(
            session, owner_id=owner_id, visible_to=None if actor.sees_all else actor.user_id
        )
        rows = [
            Receivable(
                invoice=o.invoice,
                deal=o.deal,
                owed=Money(o.invoice.currency, o.invoice.amount - o.invoice.paid_amount),
                days_overdue=days_overdue(o.invoice.due_on, today),
                ageing=ageing(o.invoice.due_on, today),
            )
            for o in owed
        ]
        names = await names_for(session, [r.deal for r in rows])
    return Receivables(
        rows=rows,
        buckets={bucket: totals(r.owed for r in rows if r.ageing is bucket) for bucket in Ageing},
        by_owner=_by_owner(rows),
        total=totals(r.owed for r in rows),
        names=names,
    )


def _by_owner(rows: Sequence[Receivable]) -> dict[int | None, list[Money]]:
    owners: dict[int | None, list[Money]] = {}
    for row in rows:
        owners.setdefault(row.deal.owner_id, []).append(row.owed)
    return {owner: totals(amounts) for owner, amounts in owners.items()}


@dataclass(frozen=True, slots=True)
class ReceivablesScreen:
    """What is owed, and the people a manager may filter it by."""

    owed: Receivables
    users: dict[int, str]


async def receivables_screen(
    db: Database, actor: Actor, *, today: date, owner_id: int | None = None
) -> ReceivablesScreen:
    owed = await receivables(db, actor, today=today, owner_id=owner_id)
    return ReceivablesScreen(owed, (await choices(db)).users)
