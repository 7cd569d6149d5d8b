"""Deals: list and filter them, open, edit, move between stages, change many at once.

Operators are scoped by the service (their deals and their contacts'); the
handlers only say who acts, through :func:`services.deals.actor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.numbers import get_currency_precision

from commhub.domain.deals import shown_name
from commhub.domain.roles import Permission
from commhub.models import Deal, Invoice, Payment, Stage
from commhub.services import accounts, deal_views, deals
from commhub.services.deal_views import DealFilter, Names, Reached
from commhub.web.api import deal_schemas as schemas
from commhub.web.endpoints import endpoint, json_response, path_id, read_body, read_query
from commhub.web.keys import DATABASE, FEED, SETTINGS, principal
from commhub.web.problems import invalid
from commhub.web.ui.formatting import zone_or_none

MAX_KEY = 150
"""An Idempotency-Key's length limit (it goes into ``origin_key`` with the user's id)."""


async def caller_zone(request: web.Request) -> ZoneInfo:
    """The caller's time zone, else the hub's: "December" is December where they are."""
    user = await accounts.user(request.app[DATABASE], principal(request).user_id)
    return zone_or_none(user.time_zone) or ZoneInfo(request.app[SETTINGS].time_zone)


def acting(request: web.Request) -> deals.Actor:
    caller = principal(request)
    return deals.actor(caller.user_id, caller.role)


def idempotency_key(request: web.Request) -> str | None:
    """The client's retry key, scoped to the caller so two users never share one."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_KEY:
        raise invalid("header.Idempotency-Key", f"give 1 to {MAX_KEY} characters")
    return f"api:{principal(request).user_id}:{key}"


def money_text(amount: Decimal, currency: str) -> str:
    """An amount as JSON carries it: a string with the currency's decimals ("1500.00")."""
    return str(amount.quantize(Decimal(1).scaleb(-get_currency_precision(currency))))


def money_out(amount: Decimal, currency: str) -> schemas.MoneyOut:
    return schemas.MoneyOut(amount=money_text(amount, currency), currency=currency)


def invoice_out(invoice: Invoice, payments: Sequence[Payment] = ()) -> schemas.InvoiceOut:
    currency = invoice.currency
    return schemas.InvoiceOut(
        id=invoice.id,
        deal_id=invoice.deal_id,
        number=invoice.number,
        amount=money_text(invoice.amount, currency),
        currency=currency,
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        paid_amount=money_text(invoice.paid_amount, currency),
        owed=money_text(invoice.amount - invoice.paid_amount, currency),
        paid_in_full=invoice.paid_in_full,
        paid_on=invoice.paid_on,
        payments=[
            schemas.PaymentOut(id=p.id, amount=money_text(p.amount, currency), paid_on=p.paid_on)
            for p in payments
        ],
    )


def stage_ref(stage: Stage) -> schemas.StageRef:
    return schemas.StageRef(
        id=stage.id,
        name=shown_name(stage.name, stage.preset),
        preset=stage.preset,
        kind=stage.kind,
    )


def deal_out(deal: Deal, names: Names) -> schemas.DealOut:
    return schemas.DealOut(
        id=deal.id,
        title=deal.title,
        amount=money_text(deal.amount, deal.currency),
        currency=deal.currency,
        pipeline_id=deal.pipeline_id,
        stage=stage_ref(names.stages[deal.stage_id]),
        contact_id=deal.contact_id,
        contact_name=None if deal.contact_id is None else names.contacts.get(deal.contact_id),
        company_id=deal.company_id,
        owner_id=deal.owner_id,
        owner_name=None if deal.owner_id is None else names.users.get(deal.owner_id),
        source=deal.source,
        expected_close_on=deal.expected_close_on,
        next_step=deal.next_step,
        next_step_due_on=deal.next_step_due_on,
        lost_reason=deal.lost_reason,
        notes=deal.notes,
        stage_entered_at=deal.stage_entered_at,
        closed_at=deal.closed_at,
        created_at=deal.created_at,
        updated_at=deal.updated_at,
    )


async def filter_of(request: web.Request, query: schemas.DealQuery) -> DealFilter:
    reached = None
    if query.reached_stage_id is not None:
        if query.since is None or query.until is None:
            raise invalid("query.since", "a drill-down needs since and until")
        reached = Reached(query.reached_stage_id, query.since, query.until, query.outcome)
    return DealFilter(
        pipeline_id=query.pipeline_id,
        stage_id=query.stage_id,
        owner_id=query.owner_id,
        contact_id=query.contact_id,
        company_id=query.company_id,
        source=None if query.source is None else query.source.value,
        state=query.state,
        text=query.q,
        overdue_on=datetime.now(await caller_zone(request)).date() if query.overdue else None,
        reached=reached,
    )


@endpoint(
    "List deals with filters (the funnel's drill-down too), sorted, offset-paginated.",
    permission=Permission.DEALS,
    tag="deals",
    query=schemas.DealQuery,
    response=schemas.DealList,
)
async def list_deals(request: web.Request) -> web.StreamResponse:
    query = read_query(request, schemas.DealQuery)
    found = await deal_views.deal_list(
        request.app[DATABASE],
        await filter_of(request, query),
        acting(request),
        sort=query.sort,
        descending=query.order == "desc",
        offset=query.offset,
        limit=query.limit,
    )
    return json_response(
        schemas.DealList(items=[deal_out(d, found.names) for d in found.deals], total=found.total)
    )


@endpoint(
    "Open a deal. With an Idempotency-Key header a retry answers with the same deal.",
    permission=Permission.DEALS,
    tag="deals",
    body=schemas.DealCreate,
    response=schemas.DealDetail,
    status=201,
)
async def create_deal(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.DealCreate)
    draft = deals.DealDraft(
        title=body.title,
        amount=body.amount,
        currency=body.currency,
        contact_id=body.contact_id,
        company_id=body.company_id,
        owner_id=body.owner_id,
        source=body.source,
        pipeline_id=body.pipeline_id,
        stage_id=body.stage_id,
        expected_close_on=body.expected_close_on,
        next_step=body.next_step,
        next_step_due_on=body.next_step_due_on,
        notes=body.notes,
        origin_key=idempotency_key(request),
    )
    actor = acting(request)
    deal = await deals.create_deal(request.app[DATABASE], draft, actor, feed=request.app[FEED])
    response = await _detail(request, deal.id, actor, status=201)
    response.headers["Location"] = f"/api/v1/deals/{deal.id}"
    return response


@endpoint(
    "One deal with its stage history.",
    permission=Permission.DEALS,
    tag="deals",
    response=schemas.DealDetail,
)
async def get_deal(request: web.Request) -> web.StreamResponse:
    return await _detail(request, path_id(request), acting(request))


@endpoint(
    "Edit a deal's fields (move it with POST /deals/{id}/move).",
    permission=Permission.DEALS,
    tag="deals",
    body=schemas.DealUpdate,
    response=schemas.DealDetail,
)
async def update_deal(request: web.Request) -> web.StreamResponse:
    deal_id = path_id(request)
    body = await read_body(request, schemas.DealUpdate)
    given = body.model_dump(exclude_unset=True)
    for name in ("contact_id", "company_id", "owner_id"):
        if given.get(name) == 0:
            given[name] = None
    for name, value in list(given.items()):
        if value is None and name not in _CLEARABLE:
            raise invalid(name, "null is not a value here; leave the field out")
    actor = acting(request)
    await deals.update_deal(request.app[DATABASE], deal_id, deals.DealChanges(**given), actor)
    return await _detail(request, deal_id, actor)


_CLEARABLE = frozenset(
    {"contact_id", "company_id", "owner_id", "expected_close_on", "next_step_due_on"}
)


@endpoint(
    "Move a deal to another stage of its pipeline; its owner hears of it live (deal.moved).",
    permission=Permission.DEALS,
    tag="deals",
    body=schemas.DealMove,
    response=schemas.DealDetail,
)
async def move_deal(request: web.Request) -> web.StreamResponse:
    deal_id = path_id(request)
    body = await read_body(request, schemas.DealMove)
    actor = acting(request)
    await deals.move_deal(
        request.app[DATABASE],
        deal_id,
        body.stage_id,
        actor,
        lost_reason=body.lost_reason,
        feed=request.app[FEED],
    )
    return await _detail(request, deal_id, actor)


@endpoint(
    "Give many deals one owner and/or move them to one stage, all or none.",
    permission=Permission.DEALS,
    tag="deals",
    body=schemas.DealBulk,
    response=schemas.BulkDone,
)
async def bulk_change(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.DealBulk)
    fields = body.model_fields_set
    changed = await deals.mass_change(
        request.app[DATABASE],
        body.ids,
        acting(request),
        owner_id=(body.owner_id or None) if "owner_id" in fields else deals.UNSET,
        stage_id=body.stage_id if body.stage_id is not None else deals.UNSET,
        feed=request.app[FEED],
    )
    return json_response(schemas.BulkDone(changed=changed))


async def _detail(
    request: web.Request, deal_id: int, actor: deals.Actor, *, status: int = 200
) -> web.Response:
    page = await deal_views.deal_page(request.app[DATABASE], deal_id, actor)
    out = deal_out(page.deal, page.names)
    detail = schemas.DealDetail(
        **out.model_dump(),
        history=[
            schemas.StageChangeOut(
                from_stage_id=c.from_stage_id,
                to_stage_id=c.to_stage_id,
                changed_at=c.changed_at,
                changed_by_id=c.changed_by_id,
            )
            for c in page.history
        ],
        invoices=[invoice_out(i, page.payments.get(i.id, [])) for i in page.invoices],
    )
    return json_response(detail, status=status)
