"""One deal in the console: its fields, stage, history, invoices and the contact's timeline.

A refused form comes back as the same page (422) with the message next to the
field it names and the values as typed, so nothing the user wrote is lost.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Final

from aiohttp import web

from commhub.domain.contacts import FieldError
from commhub.domain.money import default_currency
from commhub.domain.roles import Permission
from commhub.services import deal_console, deals, invoices
from commhub.services.deals import UNSET, DealChanges, DealDraft
from commhub.services.errors import Conflict, Forbidden, InvalidInput
from commhub.services.invoices import InvoiceDraft
from commhub.web.endpoints import endpoint, path_id
from commhub.web.keys import DATABASE, FEED, SETTINGS, principal
from commhub.web.ui import flash
from commhub.web.ui.deal_values import money, read_day, read_id
from commhub.web.ui.forms import Form, read_form
from commhub.web.ui.render import page, viewer

TIMELINE: Final = 50


async def _deal_view(
    request: web.Request,
    deal_id: int,
    *,
    errors: dict[str, str] | None = None,
    typed: Form | None = None,
    status: int = 200,
) -> web.Response:
    me = await viewer(request)
    screen = await deal_console.deal_screen(
        request.app[DATABASE], deal_id, deals.actor(me.user.id, me.role), timeline=TIMELINE
    )
    return await page(
        request,
        "deal.html",
        status=status,
        section="deals",
        shown=screen.page,
        deal=screen.page.deal,
        names=screen.page.names,
        timeline=screen.timeline,
        contact_id=screen.page.deal.contact_id,
        next_url="",
        choices=screen.choices,
        errors=errors or {},
        typed=typed or {},
        form_key=secrets.token_urlsafe(12),
        today=me.fmt.now().date(),
        money=lambda amount, currency: money(amount, currency, me.language),
    )


@endpoint("A deal's page.", permission=Permission.DEALS, tag="pages")
async def deal_page(request: web.Request) -> web.StreamResponse:
    return await _deal_view(request, path_id(request))


@endpoint("Change a deal's fields from its page.", permission=Permission.DEALS, tag="pages")
async def edit_deal(request: web.Request) -> web.StreamResponse:
    deal_id = path_id(request)
    form = await read_form(request)
    caller = principal(request)
    try:
        changes = DealChanges(
            title=form.get("title", UNSET),
            amount=form["amount"].strip() or "0" if "amount" in form else UNSET,
            currency=form.get("currency", UNSET),
            owner_id=_owner(form) if _owner_changed(form) else UNSET,
            contact_id=(
                read_id(form["contact_id"], "contact_id") if "contact_id" in form else UNSET
            ),
            expected_close_on=_day(form, "expected_close_on"),
            next_step=form.get("next_step", UNSET),
            next_step_due_on=_day(form, "next_step_due_on"),
            notes=form.get("notes", UNSET),
            lost_reason=form.get("lost_reason", UNSET),
        )
        await deals.update_deal(
            request.app[DATABASE], deal_id, changes, deals.actor(caller.user_id, caller.role)
        )
    except (InvalidInput, FieldError, Forbidden, Conflict) as exc:
        return await _deal_view(
            request, deal_id, errors={f"deal.{exc.field}": str(exc)}, typed=form, status=422
        )
    raise flash.redirect(f"/deals/{deal_id}", "Deal saved.")


@endpoint("Add an invoice to a deal.", permission=Permission.DEALS, tag="pages")
async def add_invoice(request: web.Request) -> web.StreamResponse:
    deal_id = path_id(request)
    form = await read_form(request)
    caller = principal(request)
    try:
        issued = read_day(form.get("issued_on", ""), "issued_on")
        due = read_day(form.get("due_on", ""), "due_on")
        if issued is None:
            raise InvalidInput("issued_on", "give the issue date")
        if due is None:
            raise InvalidInput("due_on", "give the due date")
        draft = InvoiceDraft(
            number=form.get("number", ""),
            amount=form.get("amount", "").strip(),
            currency=form.get("currency", "").strip() or None,
            issued_on=issued,
            due_on=due,
        )
        await invoices.add_invoice(
            request.app[DATABASE], deal_id, draft, deals.actor(caller.user_id, caller.role)
        )
    except (InvalidInput, FieldError, Forbidden, Conflict) as exc:
        return await _deal_view(
            request, deal_id, errors={f"invoice.{exc.field}": str(exc)}, typed=form, status=422
        )
    raise flash.redirect(f"/deals/{deal_id}", "Invoice added.")


@endpoint("Record a payment of a deal's invoice.", permission=Permission.DEALS, tag="pages")
async def record_payment(request: web.Request) -> web.StreamResponse:
    deal_id = path_id(request)
    form = await read_form(request)
    caller = principal(request)
    invoice_id = read_id(form.get("invoice_id", ""), "invoice_id") or 0
    key = form.get("key", "")[:40]
    try:
        paid_on = read_day(form.get("paid_on", ""), "paid_on")
        if paid_on is None:
            raise InvalidInput("paid_on", "give the day it was paid")
        await invoices.record_payment(
            request.app[DATABASE],
            invoice_id,
            amount=form.get("amount", "").strip(),
            paid_on=paid_on,
            key=f"ui:payment:{caller.user_id}:{key}" if key else None,
            actor=deals.actor(caller.user_id, caller.role),
            feed=request.app[FEED],
        )
    except (InvalidInput, FieldError, Forbidden, Conflict) as exc:
        errors = {f"payment{invoice_id}.{exc.field}": str(exc)}
        return await _deal_view(request, deal_id, errors=errors, typed=form, status=422)
    raise flash.redirect(f"/deals/{deal_id}", "Payment recorded.")


@endpoint("The form for a new deal.", permission=Permission.DEALS, tag="pages")
async def new_deal_form(request: web.Request) -> web.StreamResponse:
    contact_id = read_id(request.query.get("contact", ""), "contact")
    return await _new_view(request, contact_id)


async def _new_view(
    request: web.Request,
    contact_id: int | None,
    *,
    errors: dict[str, str] | None = None,
    typed: Form | None = None,
    status: int = 200,
) -> web.Response:
    me = await viewer(request)
    screen = await deal_console.new_deal_screen(request.app[DATABASE], contact_id)
    return await page(
        request,
        "deal_new.html",
        status=status,
        section="deals",
        screen=screen,
        errors=errors or {},
        typed=typed or {},
        default_currency=default_currency(request.app[SETTINGS].phone_region),
        form_key=secrets.token_urlsafe(12),
        can_all=me.can(Permission.DEALS_ALL),
    )


@endpoint("Open a deal from the form.", permission=Permission.DEALS, tag="pages")
async def create_deal(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    caller = principal(request)
    contact_id = None
    try:
        contact_id = read_id(form.get("contact_id", ""), "contact_id")
        owner = form.get("owner_id", "").strip()
        deal = await deals.create_deal(
            request.app[DATABASE],
            DealDraft(
                title=form.get("title", ""),
                currency=form.get("currency", ""),
                amount=form.get("amount", "").strip() or "0",
                contact_id=contact_id,
                owner_id=read_id(owner, "owner_id") if owner else None,
                pipeline_id=read_id(form.get("pipeline_id", ""), "pipeline_id"),
                expected_close_on=read_day(form.get("expected_close_on", ""), "expected_close_on"),
                next_step=form.get("next_step", ""),
                next_step_due_on=read_day(form.get("next_step_due_on", ""), "next_step_due_on"),
                notes=form.get("notes", ""),
                origin_key=_origin(form, caller.user_id),
            ),
            deals.actor(caller.user_id, caller.role),
            feed=request.app[FEED],
        )
    except (InvalidInput, FieldError, Forbidden, Conflict) as exc:
        return await _new_view(
            request, contact_id, errors={exc.field: str(exc)}, typed=form, status=422
        )
    raise flash.redirect(f"/deals/{deal.id}", "Deal created.")


def _origin(form: Form, user_id: int) -> str | None:
    key = form.get("key", "")[:40]
    return f"ui:deal:{user_id}:{key}" if key else None


def _owner_changed(form: Form) -> bool:
    """Whether the owner field says something new: an operator saving a deal of a contact
    they own, but someone else's deal, leaves its owner as it was."""
    return "owner_id" in form and form["owner_id"].strip() != form.get("owner_before", "").strip()


def _owner(form: Form) -> int | None:
    owner = form.get("owner_id", "").strip()
    return None if owner in ("", "none") else read_id(owner, "owner_id")


def _day(form: Form, name: str) -> date | None:
    if name not in form:
        return UNSET  # type: ignore[no-any-return]
    return read_day(form[name], name)
