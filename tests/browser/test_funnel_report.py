"""The funnel report and the manager's start page in a real browser: a manager reads the
funnel, clicks a figure and lands on the deals behind it; the start page links the same way."""

from __future__ import annotations

import re

from browsing import Console, log_in, screenshot
from playwright.async_api import Page, expect

from commhub.services import deals, pipelines
from commhub.services.deals import SYSTEM, DealDraft
from commhub.web.keys import DATABASE


async def _deals(console: Console) -> None:
    db = console.app[DATABASE]
    stages = {s.preset: s.id for s in (await pipelines.pipelines(db))[0].stages}
    won = await deals.create_deal(
        db,
        DealDraft(title="Turbine sale", currency="RUB", amount="250000", contact_id=console.ivan),
        SYSTEM,
    )
    await deals.move_deal(db, won.id, stages["proposal"], SYSTEM)
    await deals.move_deal(db, won.id, stages["won"], SYSTEM)
    await deals.create_deal(db, DealDraft(title="Pump enquiry", currency="RUB"), SYSTEM)


async def test_manager_clicks_a_funnel_figure_and_sees_those_deals(
    page: Page, console: Console
) -> None:
    await _deals(console)
    await log_in(page, "manager")
    await page.goto("/reports/funnel")
    await expect(page.locator("svg#funnel-chart")).to_be_visible()
    table = page.locator("table#funnel-table")
    first = table.locator("tbody tr").first
    await expect(first.locator("[data-figure=reached]")).to_have_text("2")
    await screenshot(page, "funnel-report")
    await first.locator("[data-figure=moved_on]").click()
    await expect(page).to_have_url(re.compile(r"/deals\?.*outcome=moved_on"))
    await expect(page.locator("main")).to_contain_text("Turbine sale")
    await expect(page.locator("main")).not_to_contain_text("Pump enquiry")


async def test_the_start_page_shows_the_team_and_links_to_lists(
    page: Page, console: Console
) -> None:
    await _deals(console)
    await log_in(page, "manager")
    await page.goto("/")
    await expect(page.locator("#team-start")).to_be_visible()
    await expect(page.locator("ol#team-funnel li").first).to_contain_text("2")
    await screenshot(page, "start-page")
    await page.locator("ol#team-funnel li").first.locator("a").click()
    await expect(page).to_have_url(re.compile(r"/deals\?.*reached="))
    await expect(page.locator("main")).to_contain_text("Pump enquiry")
