"""Invoices and their payments: what each deal has billed and what is still owed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.models import Deal, Invoice, Payment
from commhub.store.deals import visible_clause


async def of_deal(session: AsyncSession, deal_id: int) -> Sequence[Invoice]:
    rows = await session.scalars(
        select(Invoice).where(Invoice.deal_id == deal_id).order_by(Invoice.issued_on, Invoice.id)
    )
    return rows.all()


async def payments_of(session: AsyncSession, invoice_ids: Sequence[int]) -> Sequence[Payment]:
    if not invoice_ids:
        return []
    rows = await session.scalars(
        select(Payment)
        .where(Payment.invoice_id.in_(invoice_ids))
        .order_by(Payment.paid_on, Payment.id)
    )
    return rows.all()


async def by_number(session: AsyncSession, number: str) -> Invoice | None:
    return await session.scalar(select(Invoice).where(Invoice.number == number))


async def payment_by_key(session: AsyncSession, key: str) -> Payment | None:
    return await session.scalar(select(Payment).where(Payment.key == key))


@dataclass(frozen=True, slots=True)
class Owed:
    invoice: Invoice
    deal: Deal


async def unpaid(
    session: AsyncSession, *, owner_id: int | None = None, visible_to: int | None = None
) -> list[Owed]:
    """Every invoice not yet paid in full with its deal, the longest overdue first."""
    conditions: list[ColumnElement[bool]] = [Invoice.paid_in_full.is_(False)]
    if owner_id is not None:
        conditions.append(Deal.owner_id == owner_id)
    if visible_to is not None:
        conditions.append(visible_clause(visible_to))
    rows = await session.execute(
        select(Invoice, Deal)
        .join(Deal, Deal.id == Invoice.deal_id)
        .where(*conditions)
        .order_by(Invoice.due_on, Invoice.id)
    )
    return [Owed(invoice, deal) for invoice, deal in rows.all()]
