"""Invoices and payments over the API: partial payments add up, an overpayment is
refused, a retried payment records once, paying in full wins the deal, and the
receivables age what is still owed."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from commhub.config import Settings
from deal_calls import failed_field, open_deal

Client = TestClient[Any, Any]
Auth = dict[str, str]


async def add_invoice(client: Client, auth: Auth, deal_id: int, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/api/v1/deals/{deal_id}/invoices", json=body, headers=auth)
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def pay(
    client: Client, auth: Auth, invoice_id: int, amount: str, key: str | None = None
) -> Any:
    headers = {**auth, "Idempotency-Key": key} if key else auth
    return await client.post(
        f"/api/v1/invoices/{invoice_id}/payments",
        json={"amount": amount, "paid_on": str(date.today())},
        headers=headers,
    )


async def test_partial_payments_add_up_and_paying_in_full_wins_the_deal(
    client: Client, operator: Auth
) -> None:
    deal = await open_deal(client, operator, title="Licences", amount="1000", currency="EUR")
    today = date.today()
    invoice = await add_invoice(
        client,
        operator,
        deal["id"],
        number="INV-1",
        amount="1000.00",
        issued_on=str(today),
        due_on=str(today + timedelta(days=14)),
    )
    assert (invoice["currency"], invoice["owed"]) == ("EUR", "1000.00")
    first = await pay(client, operator, invoice["id"], "400.00", key="bank-1")
    assert (await first.json())["owed"] == "600.00"
    retried = await pay(client, operator, invoice["id"], "400.00", key="bank-1")
    assert (await retried.json())["owed"] == "600.00"
    too_much = await pay(client, operator, invoice["id"], "600.01")
    assert await failed_field(too_much) == "amount"
    float_amount = await client.post(
        f"/api/v1/invoices/{invoice['id']}/payments",
        json={"amount": 600, "paid_on": str(today)},
        headers=operator,
    )
    assert await failed_field(float_amount) == "amount"
    rest = await pay(client, operator, invoice["id"], "600")
    assert (await rest.json())["paid_in_full"] is True

    page = await (await client.get(f"/api/v1/deals/{deal['id']}", headers=operator)).json()
    assert page["stage"]["kind"] == "won"
    assert [p["amount"] for p in page["invoices"][0]["payments"]] == ["400.00", "600.00"]


async def test_bad_invoices_are_refused_naming_the_field(client: Client, manager: Auth) -> None:
    deal = await open_deal(client, manager, title="X")
    today = date.today()
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"amount": "10", "issued_on": str(today), "due_on": str(today - timedelta(days=1))},
            "due_on",
        ),
        ({"amount": "-5", "issued_on": str(today), "due_on": str(today)}, "amount"),
        ({"amount": "0", "issued_on": str(today), "due_on": str(today)}, "amount"),
        (
            {"amount": "5", "currency": "XYZ", "issued_on": str(today), "due_on": str(today)},
            "currency",
        ),
    ]
    for n, (body, field) in enumerate(cases):
        response = await client.post(
            f"/api/v1/deals/{deal['id']}/invoices",
            json={"number": f"B-{n}", **body},
            headers=manager,
        )
        assert await failed_field(response) == field, body


async def test_receivables_age_what_is_owed_per_currency(
    client: Client, manager: Auth, operator: Auth, settings: Settings
) -> None:
    today = datetime.now(ZoneInfo(settings.time_zone)).date()  # the callers chose no zone
    mine = await open_deal(client, operator, title="Mine", currency="RUB")
    theirs = await open_deal(client, manager, title="Theirs", currency="USD")
    late = await add_invoice(
        client,
        operator,
        mine["id"],
        number="R-1",
        amount="300",
        issued_on=str(today - timedelta(days=50)),
        due_on=str(today - timedelta(days=40)),
    )
    await pay(client, operator, late["id"], "100")
    await add_invoice(
        client,
        manager,
        theirs["id"],
        number="U-1",
        amount="70.5",
        issued_on=str(today),
        due_on=str(today + timedelta(days=5)),
    )
    everything = await (await client.get("/api/v1/receivables", headers=manager)).json()
    assert [(r["number"], r["ageing"], r["owed"]) for r in everything["rows"]] == [
        ("R-1", "31_60", {"amount": "200.00", "currency": "RUB"}),
        ("U-1", "not_due", {"amount": "70.50", "currency": "USD"}),
    ]
    assert everything["rows"][0]["days_overdue"] == 40
    assert everything["buckets"]["31_60"] == [{"amount": "200.00", "currency": "RUB"}]
    assert everything["total"] == [
        {"amount": "200.00", "currency": "RUB"},
        {"amount": "70.50", "currency": "USD"},
    ]
    own = await (await client.get("/api/v1/receivables", headers=operator)).json()
    assert [r["number"] for r in own["rows"]] == ["R-1"]
    refused = await pay(client, operator, 99999, "1")
    assert refused.status == 404
