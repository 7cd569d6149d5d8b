"""The deals board in a real browser: drag a card, move one with the keyboard only,
open a deal from its card, and the card's and the screen pop's open deals."""

from __future__ import annotations

import re
from datetime import date, timedelta

from browsing import Console, live_feed_open, log_in, play_paced, screenshot
from playwright.async_api import Page, expect
from sqlalchemy import select

from commhub.models import Deal, Stage, User
from commhub.services import deals
from commhub.services.deals import SYSTEM, DealDraft
from commhub.web.keys import DATABASE


async def _stages(console: Console) -> dict[str, int]:
    async with console.app[DATABASE]() as session:
        rows = await session.scalars(select(Stage).where(Stage.removed_at.is_(None)))
        return {s.preset or s.name: s.id for s in rows}


async def _deal(console: Console, title: str, **fields: object) -> int:
    async with console.app[DATABASE]() as session:
        owner = await session.scalar(select(User.id).where(User.username == "operator"))
    draft = DealDraft(title=title, currency="RUB", owner_id=owner, **fields)  # type: ignore[arg-type]
    return (await deals.create_deal(console.app[DATABASE], draft, SYSTEM)).id


async def _stage_of(console: Console, deal_id: int) -> int:
    async with console.app[DATABASE]() as session:
        deal = await session.get(Deal, deal_id)
    assert deal is not None
    return deal.stage_id


async def test_drag_a_card_to_another_column_and_it_stays_there(
    page: Page, console: Console
) -> None:
    stages = await _stages(console)
    deal_id = await _deal(
        console,
        "Office chairs",
        contact_id=console.ivan,
        next_step="Call back",
        next_step_due_on=date.today() - timedelta(days=2),
    )
    await log_in(page, "operator")
    await page.goto("/deals/board")
    new_lead = page.locator(f'.board-column[data-stage="{stages["new_lead"]}"]')
    proposal = page.locator(f'.board-column[data-stage="{stages["proposal"]}"]')
    card = page.locator(f"#deal-{deal_id}")
    await expect(new_lead.locator(".deal-card")).to_have_count(1)
    await expect(card).to_contain_text("Ivan Petrov")
    await expect(card.locator(".deal-next")).to_have_class(re.compile(r"\boverdue\b"))
    await expect(card.locator(".deal-next")).to_have_css("color", "rgb(180, 35, 24)")
    await screenshot(page, "deals-board")

    await card.drag_to(proposal.locator(".cards"))
    await expect(page.locator("#board-status")).to_have_text("Moved to Proposal / invoice.")
    await expect(proposal.locator(f"#deal-{deal_id}")).to_have_count(1)
    await expect(proposal.locator(".count")).to_have_text("1")
    assert await _stage_of(console, deal_id) == stages["proposal"]

    await page.reload()
    await expect(proposal.locator(f"#deal-{deal_id}")).to_have_count(1)
    await expect(new_lead.locator(".deal-card")).to_have_count(0)


async def test_move_a_card_with_the_keyboard_only(page: Page, console: Console) -> None:
    stages = await _stages(console)
    deal_id = await _deal(console, "Printer paper")
    await log_in(page, "operator")
    await page.goto("/deals/board")
    card = page.locator(f"#deal-{deal_id}")
    await card.focus()
    await page.keyboard.press("ArrowRight")  # the next column
    in_progress = page.locator(f'.board-column[data-stage="{stages["in_progress"]}"]')
    await expect(in_progress.locator(f"#deal-{deal_id}")).to_have_count(1)
    await expect(page.locator("#board-status")).to_have_text("Moved to In progress.")
    await expect(card).to_be_focused()

    # The "Move to…" select and its button, reached with Tab.
    await page.keyboard.press("Tab")  # the title link
    await page.keyboard.press("Tab")  # the select
    select = card.locator(".move-to")
    await expect(select).to_be_focused()
    await select.select_option(str(stages["won"]))
    await page.keyboard.press("Tab")
    await expect(card.locator(".deal-move button")).to_be_focused()
    await page.keyboard.press("Enter")
    won = page.locator(f'.board-column[data-stage="{stages["won"]}"]')
    await expect(won.locator(f"#deal-{deal_id}")).to_have_count(1)
    await page.reload()
    await expect(won.locator(f"#deal-{deal_id}")).to_have_count(1)
    assert await _stage_of(console, deal_id) == stages["won"]


async def test_a_refused_move_says_why_and_leaves_the_card(page: Page, console: Console) -> None:
    stages = await _stages(console)
    deal_id = await _deal(console, "Desks")
    await log_in(page, "operator")
    await page.goto("/deals/board")
    async with console.app[DATABASE]() as session:
        manager = await session.scalar(select(User.id).where(User.username == "manager"))
    # Someone gives the deal to a manager while the operator looks at the board.
    await deals.update_deal(
        console.app[DATABASE], deal_id, deals.DealChanges(owner_id=manager), SYSTEM
    )
    card = page.locator(f"#deal-{deal_id}")
    await card.focus()
    await page.keyboard.press("ArrowRight")
    status = page.locator("#board-status")
    await expect(status).to_contain_text("Not moved:")
    await expect(status).to_contain_text("belongs to someone else")
    new_lead = page.locator(f'.board-column[data-stage="{stages["new_lead"]}"]')
    await expect(new_lead.locator(f"#deal-{deal_id}")).to_have_count(1)
    assert await _stage_of(console, deal_id) == stages["new_lead"]


async def test_open_the_deal_page_from_a_card_and_a_new_deal_from_the_contact(
    page: Page, console: Console
) -> None:
    deal_id = await _deal(console, "Laptops", contact_id=console.ivan)
    await log_in(page, "operator")
    await page.goto("/deals/board")
    await page.locator(f"#deal-{deal_id}").get_by_role("link", name="Laptops").click()
    await expect(page).to_have_url(re.compile(rf"/deals/{deal_id}$"))
    await expect(page.locator("#deal-title")).to_have_text("Laptops")
    await expect(page.locator("#deal-history")).to_contain_text("New lead")
    await expect(page.locator("#timeline .deal-line")).to_contain_text("Deal: Laptops")

    await page.goto(f"/contacts/{console.ivan}")
    await expect(page.locator("#card-deals")).to_contain_text("Laptops")
    await page.locator("#card-deals").get_by_role("link", name="New deal").click()
    await expect(page.locator("#new-deal-contact")).to_have_text("Ivan Petrov")
    await page.fill("input[name=title]", "Monitors")
    await page.fill("input[name=amount]", "-3")
    await page.get_by_role("button", name="Create the deal").click()
    await expect(page.locator("#error-amount")).to_be_visible()
    await page.fill("input[name=amount]", "300")
    await page.get_by_role("button", name="Create the deal").click()
    await expect(page.locator("#deal-title")).to_have_text("Monitors")
    await expect(page.locator("#deal-contact")).to_have_text("Ivan Petrov")


async def test_the_screen_pop_shows_the_callers_open_deals(page: Page, console: Console) -> None:
    stages = await _stages(console)
    open_id = await _deal(console, "Office chairs", contact_id=console.ivan)
    await _deal(console, "Old order", contact_id=console.ivan, stage_id=stages["won"])
    await log_in(page, "operator")
    await live_feed_open(page)
    call = play_paced(console, "inbound_answered_ru_trunk_prefix")
    pop = page.get_by_role("alertdialog", name="Ivan Petrov")
    deals_shown = pop.locator(".pop-deals li")
    await expect(deals_shown).to_have_count(1)  # a won deal is no open deal
    await expect(deals_shown).to_have_text("Office chairs New lead")
    await expect(deals_shown.get_by_role("link")).to_have_attribute("href", f"/deals/{open_id}")
    await expect(pop.locator(".pop-new-deal")).to_have_attribute(
        "href", f"/deals/new?contact={console.ivan}"
    )
    await screenshot(page, "screen-pop-deals")
    await call.finish()
