"""Receivables in the console: what is owed, overdue first, aged in the viewer's days,
totals per currency; operators see their own deals' invoices only."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from app_fixtures import log_in
from commhub.models import User
from commhub.services import deals, invoices
from commhub.services.deals import SYSTEM, DealDraft
from commhub.services.invoices import InvoiceDraft
from commhub.web.keys import DATABASE

Client = TestClient[Any, Any]


async def _user_id(client: Client, username: str) -> int:
    async with client.app[DATABASE]() as session:
        found = await session.scalar(select(User.id).where(User.username == username))
    assert found is not None
    return found


async def _owed(client: Client) -> None:
    """The operator's deal: 45 days late, partly paid (RUB); the manager's deal: not due
    yet (RUB) and 70 days late (EUR)."""
    db = client.app[DATABASE]
    today = date.today()
    operator = await _user_id(client, "operator")
    manager = await _user_id(client, "manager")
    mine = await deals.create_deal(
        db, DealDraft(title="Operator's", currency="RUB", owner_id=operator), SYSTEM
    )
    late = await invoices.add_invoice(
        db,
        mine.id,
        InvoiceDraft("OP-1", "1000.00", today - timedelta(days=60), today - timedelta(days=45)),
        SYSTEM,
    )
    await invoices.record_payment(
        db, late.id, amount="250.00", paid_on=today, key=None, actor=SYSTEM
    )
    theirs = await deals.create_deal(
        db, DealDraft(title="Manager's", currency="RUB", owner_id=manager), SYSTEM
    )
    await invoices.add_invoice(
        db, theirs.id, InvoiceDraft("MG-1", "500", today, today + timedelta(days=10)), SYSTEM
    )
    await invoices.add_invoice(
        db,
        theirs.id,
        InvoiceDraft(
            "MG-2", "80.10", today - timedelta(days=80), today - timedelta(days=70), "EUR"
        ),
        SYSTEM,
    )


def _bucket(html: str, key: str) -> str:
    found = re.search(rf'data-bucket="{key}">(.*?)</td>', html, re.S)
    assert found is not None, html
    return re.sub(r"<[^>]+>", " ", found.group(1)).replace("\xa0", " ").strip()


async def test_manager_sees_every_unpaid_invoice_aged_and_summed_per_currency(
    client: Client,
) -> None:
    await _owed(client)
    await log_in(client, "manager")
    response = await client.get("/receivables")
    assert response.status == 200
    html = await response.text()
    numbers = re.findall(
        r'data-invoice="\d+"[^>]*data-ageing="([^"]+)">\s*<th scope="row"><a[^>]*>([^<]+)<', html
    )
    # Overdue first, the longest first.
    assert [n for _, n in numbers] == ["MG-2", "OP-1", "MG-1"]
    assert dict((n, a) for a, n in numbers) == {
        "MG-2": "60_plus",
        "OP-1": "31_60",
        "MG-1": "not_due",
    }
    assert "750.00" in _bucket(html, "31_60")
    assert "80.10" in _bucket(html, "60_plus")
    assert "500.00" in _bucket(html, "not_due")
    total = _bucket(html, "total")
    assert "1,250.00" in total and "80.10" in total  # never one sum of roubles and euros


async def test_operator_sees_only_what_is_owed_on_their_deals(client: Client) -> None:
    await _owed(client)
    await log_in(client, "operator")
    response = await client.get("/receivables")
    assert response.status == 200
    html = await response.text()
    assert "OP-1" in html
    assert "MG-1" not in html and "MG-2" not in html


async def test_a_manager_filters_by_owner_and_a_bad_owner_is_a_message(client: Client) -> None:
    await _owed(client)
    await log_in(client, "manager")
    operator = await _user_id(client, "operator")
    html = await (await client.get(f"/receivables?owner={operator}")).text()
    assert "OP-1" in html and "MG-1" not in html
    bad = await client.get("/receivables?owner=abc")
    assert bad.status == 400
    assert "owner" in await bad.text()
    await log_in(client, "marketer")
    assert (await client.get("/receivables")).status == 403
