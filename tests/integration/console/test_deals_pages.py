"""The deals console: the list and its filters, mass changes, the deal page and its forms."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from app_fixtures import log_in
from commhub.models import Contact, Deal, Stage, StageChange, User
from commhub.services import deals
from commhub.services.deals import SYSTEM, DealDraft
from commhub.web.keys import DATABASE

Client = TestClient[Any, Any]


async def _user_id(client: Client, username: str) -> int:
    async with client.app[DATABASE]() as session:
        found = await session.scalar(select(User.id).where(User.username == username))
    assert found is not None
    return found


async def _stages(client: Client) -> dict[str, int]:
    async with client.app[DATABASE]() as session:
        rows = await session.scalars(select(Stage).where(Stage.removed_at.is_(None)))
        return {s.preset or s.name: s.id for s in rows}


async def _contact(client: Client, headers: dict[str, str], name: str = "Ivan Petrov") -> int:
    made = await client.post("/api/v1/contacts", json={"name": name}, headers=headers)
    assert made.status == 201, await made.text()
    return int((await made.json())["id"])


async def _deal(client: Client, title: str, owner: str, **fields: Any) -> int:
    draft = DealDraft(
        title=title,
        currency=fields.pop("currency", "RUB"),
        owner_id=await _user_id(client, owner),
        **fields,
    )
    deal = await deals.create_deal(client.app[DATABASE], draft, SYSTEM)
    return deal.id


async def _get(client: Client, deal_id: int) -> Deal:
    async with client.app[DATABASE]() as session:
        found = await session.get(Deal, deal_id)
    assert found is not None
    return found


def _notice(text: str) -> str:
    found = re.search(r'<p class="notice[^"]*" role="status">([^<]*)</p>', text)
    return found.group(1) if found else ""


def _rows(text: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-deal="(\d+)"', text)]


async def test_list_filters_by_stage_text_state_and_overdue_step(
    client: Client, manager: dict[str, str]
) -> None:
    stages = await _stages(client)
    late = await _deal(
        client,
        "Printer paper",
        "operator",
        next_step="Call back",
        next_step_due_on=date.today() - timedelta(days=3),
    )
    proposal = await _deal(client, "Laptops", "manager", stage_id=stages["proposal"])
    won = await _deal(client, "Chairs", "manager", stage_id=stages["won"])
    await log_in(client, "manager")
    everything = await (await client.get("/deals")).text()
    assert set(_rows(everything)) == {late, proposal, won}
    assert ">Deals</a>" in everything  # the nav link
    assert _rows(await (await client.get(f"/deals?stage={stages['proposal']}")).text()) == [
        proposal
    ]
    assert _rows(await (await client.get("/deals?q=lapt")).text()) == [proposal]
    assert set(_rows(await (await client.get("/deals?state=open")).text())) == {late, proposal}
    assert _rows(await (await client.get("/deals?state=won")).text()) == [won]
    overdue = await (await client.get("/deals?overdue=1")).text()
    assert _rows(overdue) == [late] and 'class="error overdue"' in overdue
    owner = await _user_id(client, "operator")
    assert _rows(await (await client.get(f"/deals?owner={owner}")).text()) == [late]
    by_title = await (await client.get("/deals?sort=title&order=asc")).text()
    assert _rows(by_title) == [won, proposal, late]
    refused = await client.get("/deals?state=sideways")
    assert refused.status == 200
    assert 'id="filter-error"' in await refused.text()


async def test_list_takes_the_funnel_drill_down(client: Client, manager: dict[str, str]) -> None:
    stages = await _stages(client)
    went_on = await _deal(client, "Went on", "manager")
    stayed = await _deal(client, "Stayed", "manager")
    await deals.move_deal(client.app[DATABASE], went_on, stages["in_progress"], SYSTEM)
    await log_in(client, "manager")
    today = date.today()
    period = f"from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"
    reached = await (
        await client.get(f"/deals?reached={stages['new_lead']}&outcome=reached&{period}")
    ).text()
    assert set(_rows(reached)) == {went_on, stayed}
    assert 'id="drill-down"' in reached
    moved_on = f"/deals?reached={stages['new_lead']}&outcome=moved_on&{period}"
    assert _rows(await (await client.get(moved_on)).text()) == [went_on]
    long_ago = "from=2020-01-01&to=2020-01-31"
    empty = f"/deals?reached={stages['new_lead']}&outcome=reached&{long_ago}"
    assert _rows(await (await client.get(empty)).text()) == []
    bad = await client.get(f"/deals?reached={stages['new_lead']}&outcome=maybe&{period}")
    assert bad.status == 200 and 'id="filter-error"' in await bad.text()


async def test_mass_change_of_owner_and_stage(client: Client, manager: dict[str, str]) -> None:
    stages = await _stages(client)
    first = await _deal(client, "First", "manager")
    second = await _deal(client, "Second", "manager")
    untouched = await _deal(client, "Third", "manager")
    operator_id = await _user_id(client, "operator")
    csrf = await log_in(client, "manager")
    done = await client.post(
        "/deals/mass",
        data=[
            ("csrf_token", csrf),
            ("ids", str(first)),
            ("ids", str(second)),
            ("owner_id", str(operator_id)),
            ("stage_id", str(stages["proposal"])),
        ],
    )
    assert _notice(await done.text()) == "2 deals changed."
    for deal_id in (first, second):
        deal = await _get(client, deal_id)
        assert deal.owner_id == operator_id and deal.stage_id == stages["proposal"]
    assert (await _get(client, untouched)).stage_id == stages["new_lead"]
    nothing = await client.post("/deals/mass", data={"csrf_token": csrf, "owner_id": ""})
    assert _notice(await nothing.text()).startswith("Not done:")


async def test_operator_cannot_change_or_open_others_deals(
    client: Client, operator: dict[str, str]
) -> None:
    stages = await _stages(client)
    mine = await _deal(client, "Mine", "operator")
    theirs = await _deal(client, "Theirs", "manager")
    csrf = await log_in(client, "operator")
    listed = await (await client.get("/deals")).text()
    assert _rows(listed) == [mine]  # an operator's list holds only what they may see
    refused = await client.post(
        "/deals/mass",
        data=[
            ("csrf_token", csrf),
            ("ids", str(mine)),
            ("ids", str(theirs)),
            ("stage_id", str(stages["proposal"])),
        ],
    )
    assert "belongs to someone else" in _notice(await refused.text())
    assert (await _get(client, mine)).stage_id == stages["new_lead"]  # all or none
    assert (await _get(client, theirs)).stage_id == stages["new_lead"]
    page = await client.get(f"/deals/{theirs}")
    assert page.status == 403
    moved = await client.post(
        f"/deals/{theirs}/stage",
        data={"csrf_token": csrf, "stage_id": str(stages["won"])},
        headers={"Accept": "application/json"},
    )
    assert moved.status == 403
    assert "belongs to someone else" in (await moved.json())["detail"]


async def test_deal_page_edits_moves_and_shows_history_and_timeline(
    client: Client, operator: dict[str, str]
) -> None:
    stages = await _stages(client)
    contact_id = await _contact(client, operator)
    deal_id = await _deal(client, "Office chairs", "operator", contact_id=contact_id)
    csrf = await log_in(client, "operator")
    saved = await client.post(
        f"/deals/{deal_id}",
        data={
            "csrf_token": csrf,
            "title": "Office chairs x20",
            "amount": "1250.50",
            "currency": "EUR",
            "owner_id": str(await _user_id(client, "operator")),
            "contact_id": str(contact_id),
            "expected_close_on": "2027-01-15",
            "next_step": "Send the offer",
            "next_step_due_on": "2027-01-10",
            "notes": "Wants grey ones",
            "lost_reason": "",
        },
    )
    text = await saved.text()
    assert _notice(text) == "Deal saved."
    deal = await _get(client, deal_id)
    assert deal.amount == Decimal("1250.50") and deal.currency == "EUR"
    assert deal.next_step_due_on == date(2027, 1, 10)
    moved = await client.post(
        f"/deals/{deal_id}/stage", data={"csrf_token": csrf, "stage_id": str(stages["proposal"])}
    )
    page = await moved.text()
    assert _notice(page) == "Deal moved."
    history = re.search(r'<ol id="deal-history".*?</ol>', page, re.S)
    assert history is not None and "New lead → Proposal / invoice" in history.group(0)
    # The contact's timeline shows the move, linked to the deal.
    assert f'href="/deals/{deal_id}"' in page and 'data-channel="deal"' in page
    async with client.app[DATABASE]() as session:
        changes = (
            await session.scalars(select(StageChange).where(StageChange.deal_id == deal_id))
        ).all()
    assert [c.to_stage_id for c in changes] == [stages["new_lead"], stages["proposal"]]


async def test_deal_page_shows_refusals_next_to_the_field(
    client: Client, operator: dict[str, str]
) -> None:
    deal_id = await _deal(client, "Desks", "operator", amount=Decimal("10"))
    csrf = await log_in(client, "operator")
    negative = await client.post(
        f"/deals/{deal_id}", data={"csrf_token": csrf, "title": "Desks", "amount": "-5"}
    )
    text = await negative.text()
    assert negative.status == 422
    assert 'id="error-deal-amount"' in text and 'value="-5"' in text
    currency = await client.post(f"/deals/{deal_id}", data={"csrf_token": csrf, "currency": "XYZ"})
    assert currency.status == 422 and 'id="error-deal-currency"' in await currency.text()
    assert (await _get(client, deal_id)).amount == Decimal("10")
    invoice = await client.post(
        f"/deals/{deal_id}/invoices",
        data={
            "csrf_token": csrf,
            "number": "INV-1",
            "amount": "100",
            "currency": "RUB",
            "issued_on": "2026-12-10",
            "due_on": "2026-12-01",
        },
    )
    text = await invoice.text()
    assert invoice.status == 422 and 'id="error-invoice-due_on"' in text
    added = await client.post(
        f"/deals/{deal_id}/invoices",
        data={
            "csrf_token": csrf,
            "number": "INV-1",
            "amount": "100",
            "currency": "RUB",
            "issued_on": "2026-12-01",
            "due_on": "2026-12-31",
        },
    )
    page = await added.text()
    assert _notice(page) == "Invoice added."
    found = re.search(r'<tr data-invoice="(\d+)"', page)
    assert found is not None
    invoice_id = found.group(1)
    too_much = await client.post(
        f"/deals/{deal_id}/payments",
        data={
            "csrf_token": csrf,
            "invoice_id": invoice_id,
            "amount": "-1",
            "paid_on": "2026-12-05",
        },
    )
    assert too_much.status == 422
    assert f'id="error-payment{invoice_id}-amount"' in await too_much.text()
    paid = await client.post(
        f"/deals/{deal_id}/payments",
        data={
            "csrf_token": csrf,
            "invoice_id": invoice_id,
            "amount": "40",
            "paid_on": "2026-12-05",
        },
    )
    assert _notice(await paid.text()) == "Payment recorded."


async def test_new_deal_from_the_card(client: Client, operator: dict[str, str]) -> None:
    contact_id = await _contact(client, operator, "Anna Smirnova")
    csrf = await log_in(client, "operator")
    card = await (await client.get(f"/contacts/{contact_id}")).text()
    assert f'href="/deals/new?contact={contact_id}"' in card
    form = await (await client.get(f"/deals/new?contact={contact_id}")).text()
    assert 'id="new-deal-contact"' in form and "Anna Smirnova" in form
    empty = await client.post(
        "/deals/new",
        data={"csrf_token": csrf, "contact_id": str(contact_id), "title": " ", "currency": "RUB"},
    )
    text = await empty.text()
    assert empty.status == 422 and 'id="error-title"' in text and "Anna Smirnova" in text
    made = await client.post(
        "/deals/new",
        data={
            "csrf_token": csrf,
            "contact_id": str(contact_id),
            "title": "Website redesign",
            "amount": "5000",
            "currency": "RUB",
            "key": "k1",
        },
    )
    page = await made.text()
    assert _notice(page) == "Deal created."
    assert '<h1 id="deal-title">Website redesign</h1>' in page
    card = await (await client.get(f"/contacts/{contact_id}")).text()
    deals_panel = re.search(r'<section class="panel" id="card-deals">.*?</section>', card, re.S)
    assert deals_panel is not None
    assert "Website redesign" in deals_panel.group(0) and "New lead" in deals_panel.group(0)


async def test_board_columns_count_sum_per_currency_and_show_more(
    client: Client, manager: dict[str, str]
) -> None:
    stages = await _stages(client)
    for n in range(22):
        await _deal(client, f"Lead {n}", "manager", amount=Decimal("10.25"))
    await _deal(client, "In euros", "manager", amount=Decimal("5"), currency="EUR")
    await _deal(client, "Won one", "manager", stage_id=stages["won"])
    await log_in(client, "manager")
    board = await (await client.get("/deals/board")).text()
    columns = re.findall(r'<section class="board-column stage-(\w+)" data-stage="(\d+)"', board)
    kinds = [kind for kind, _ in columns]
    assert kinds == sorted(kinds, key=["open", "won", "lost"].index)  # open ones, then won, lost
    first = board.split(f'data-stage="{stages["new_lead"]}"')[1].split("</section>")[0]
    assert '<span class="count">23</span>' in first
    assert "225.50" in first and "5.00" in first  # 22 x 10.25 RUB and 5 EUR, never mixed
    assert first.count('class="deal-card"') == 20
    more = re.search(r'class="show-more" href="([^"]+)"', first)
    assert more is not None
    rest = await client.get(more.group(1).replace("&amp;", "&"))
    text = await rest.text()
    assert rest.status == 200 and text.count('class="deal-card"') == 3 and "show-more" not in text
    shown = set(re.findall(r'data-deal="(\d+)"', first + text))
    assert len(shown) == 23


async def test_odd_addresses_answer_a_page_not_a_failure(
    client: Client, manager: dict[str, str]
) -> None:
    await log_in(client, "manager")
    for path in (
        "/deals?offset=abc&sort=nonsense&order=sideways",
        "/deals?from=2026-13-01&reached=1",
        "/deals?pipeline=x",
        "/deals/board?pipeline=999999",
        "/deals/board?pipeline=abc",
        "/deals/board/more?stage=1&after=yesterday&after_id=1",
        "/deals/board/more",
        "/deals/new?contact=999999",
        "/deals/999999",
    ):
        answer = await client.get(path)
        assert answer.status < 500, (path, answer.status)


async def test_operator_edits_a_deal_of_a_contact_they_own_and_its_owner_stays(
    client: Client, operator: dict[str, str]
) -> None:
    contact_id = await _contact(client, operator)
    async with client.app[DATABASE].begin() as session:
        contact = await session.get(Contact, contact_id)
        assert contact is not None
        contact.owner_id = await _user_id(client, "operator")
    deal_id = await _deal(client, "Managed", "manager", contact_id=contact_id)
    csrf = await log_in(client, "operator")
    page = await (await client.get(f"/deals/{deal_id}")).text()
    assert 'name="owner_before" value="' in page
    manager_id = await _user_id(client, "manager")
    saved = await client.post(
        f"/deals/{deal_id}",
        data={
            "csrf_token": csrf,
            "title": "Managed, renamed",
            "owner_id": str(manager_id),
            "owner_before": str(manager_id),
        },
    )
    assert _notice(await saved.text()) == "Deal saved."
    deal = await _get(client, deal_id)
    assert deal.title == "Managed, renamed" and deal.owner_id == manager_id
    taken = await client.post(
        f"/deals/{deal_id}",
        data={"csrf_token": csrf, "owner_id": "none", "owner_before": str(manager_id)},
    )
    assert taken.status == 422 and 'id="error-deal-owner_id"' in await taken.text()
    assert (await _get(client, deal_id)).owner_id == manager_id
