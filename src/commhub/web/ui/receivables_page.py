"""Receivables: what customers still owe on invoices, overdue first, by owner and by age.

Ages count in the viewer's own days (an invoice due yesterday in Novosibirsk is
one day late there), in the buckets accountants use: not due, 1–30, 31–60 and
over 60 days. Operators see what is owed on their own deals.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from commhub.domain.receivables import Ageing
from commhub.domain.roles import Permission
from commhub.services import invoices
from commhub.services.deals import actor
from commhub.services.errors import InvalidInput
from commhub.web.endpoints import endpoint
from commhub.web.keys import DATABASE
from commhub.web.ui.deal_values import money, read_id
from commhub.web.ui.i18n import N_
from commhub.web.ui.render import page, viewer

BUCKETS: Final = (
    (Ageing.NOT_DUE, N_("Not due yet")),
    (Ageing.DAYS_1_30, N_("1–30 days late")),
    (Ageing.DAYS_31_60, N_("31–60 days late")),
    (Ageing.OVER_60, N_("Over 60 days late")),
)


@endpoint(
    "Receivables: unpaid invoices, overdue first, with totals by owner and by age.",
    permission=Permission.DEALS,
    tag="pages",
)
async def receivables(request: web.Request) -> web.StreamResponse:
    me = await viewer(request)
    acting = actor(me.user.id, me.role)
    problem: str | None = None
    try:
        owner_id = read_id(request.query.get("owner", ""), "owner")
    except InvalidInput as error:
        owner_id, problem = None, f"{error.field}: {error}"
    screen = await invoices.receivables_screen(
        request.app[DATABASE], acting, today=me.fmt.now().date(), owner_id=owner_id
    )
    return await page(
        request,
        "receivables.html",
        status=400 if problem else 200,
        section="receivables",
        error=problem,
        owed=screen.owed,
        users=screen.users if acting.sees_all else {},
        owner_id=owner_id,
        buckets=BUCKETS,
        money=lambda m: money(m.amount, m.currency, me.language),
    )
