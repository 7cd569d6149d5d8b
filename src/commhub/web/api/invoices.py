"""Invoices on deals, payments against them, and what is owed (receivables)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.services import invoices
from commhub.web.api import deal_schemas as schemas
from commhub.web.api.deals import acting, caller_zone, idempotency_key, invoice_out, money_out
from commhub.web.endpoints import endpoint, json_response, path_id, read_body, read_query
from commhub.web.keys import DATABASE, FEED


@endpoint(
    "Add an invoice to a deal (its currency by default; due no earlier than issued).",
    permission=Permission.DEALS,
    tag="deals",
    body=schemas.InvoiceCreate,
    response=schemas.InvoiceOut,
    status=201,
)
async def add_invoice(request: web.Request) -> web.StreamResponse:
    deal_id = path_id(request)
    body = await read_body(request, schemas.InvoiceCreate)
    draft = invoices.InvoiceDraft(
        number=body.number,
        amount=body.amount,
        issued_on=body.issued_on,
        due_on=body.due_on,
        currency=body.currency,
    )
    invoice = await invoices.add_invoice(request.app[DATABASE], deal_id, draft, acting(request))
    return json_response(invoice_out(invoice), status=201)


@endpoint(
    "Record a payment (never more than is owed). With an Idempotency-Key header a retry "
    "records nothing twice. Paying the last invoice of a deal may win it (won_when_paid). "
    "Answers the invoice's totals; GET /deals/{id} lists its payments.",
    permission=Permission.DEALS,
    tag="deals",
    body=schemas.PaymentCreate,
    response=schemas.InvoiceOut,
)
async def record_payment(request: web.Request) -> web.StreamResponse:
    invoice_id = path_id(request)
    body = await read_body(request, schemas.PaymentCreate)
    invoice = await invoices.record_payment(
        request.app[DATABASE],
        invoice_id,
        amount=body.amount,
        paid_on=body.paid_on,
        key=idempotency_key(request),
        actor=acting(request),
        feed=request.app[FEED],
    )
    return json_response(invoice_out(invoice))


@endpoint(
    "What is owed on unpaid invoices, overdue first, aged in the caller's time zone, "
    "with sums per ageing bucket and in total (per currency).",
    permission=Permission.DEALS,
    tag="deals",
    query=schemas.ReceivablesQuery,
    response=schemas.ReceivablesOut,
)
async def receivables(request: web.Request) -> web.StreamResponse:
    query = read_query(request, schemas.ReceivablesQuery)
    today = datetime.now(await caller_zone(request)).date()
    found = await invoices.receivables(
        request.app[DATABASE], acting(request), today=today, owner_id=query.owner_id
    )
    names = found.names
    return json_response(
        schemas.ReceivablesOut(
            rows=[
                schemas.ReceivableOut(
                    invoice_id=r.invoice.id,
                    number=r.invoice.number,
                    deal_id=r.deal.id,
                    deal_title=r.deal.title,
                    owner_id=r.deal.owner_id,
                    owner_name=None
                    if r.deal.owner_id is None
                    else names.users.get(r.deal.owner_id),
                    owed=money_out(r.owed.amount, r.owed.currency),
                    due_on=r.invoice.due_on,
                    days_overdue=r.days_overdue,
                    ageing=r.ageing.value,
                )
                for r in found.rows
            ],
            buckets={
                bucket.value: [money_out(m.amount, m.currency) for m in sums]
                for bucket, sums in found.buckets.items()
            },
            total=[money_out(m.amount, m.currency) for m in found.total],
        )
    )
