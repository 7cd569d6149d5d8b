"""The segment builder in a real browser: a marketer nests an OR group inside an AND,
watches the live count reach exactly who matches, saves, and the saved segment agrees."""

from __future__ import annotations

import re

from browsing import Console, log_in, screenshot
from playwright.async_api import Page, expect

from commhub.domain.contacts import ContactDraft
from commhub.services import contacts, deals, segments
from commhub.services.deals import SYSTEM, DealDraft
from commhub.web.keys import DATABASE


async def _person(console: Console, name: str, city: str, tags: tuple[str, ...] = ()) -> int:
    view = await contacts.create_contact(
        console.app[DATABASE],
        ContactDraft(name=name, tags=tags, extra={"city": city}),
        owner_id=None,
        source="test",
    )
    return view.id


async def test_an_or_group_inside_an_and_counts_live_and_saves(
    page: Page, console: Console
) -> None:
    # Moscow AND (VIP OR an open deal) holds Anna and Boris only.
    await _person(console, "Anna Moscow VIP", "Moscow", ("vip",))
    boris = await _person(console, "Boris Moscow Deal", "Moscow")
    await _person(console, "Clara Moscow Nobody", "Moscow")
    await _person(console, "Dmitry Kazan VIP", "Kazan", ("vip",))
    draft = DealDraft(title="Chairs", currency="RUB", contact_id=boris)
    await deals.create_deal(console.app[DATABASE], draft, SYSTEM)

    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    await log_in(page, "marketer")
    await page.click("nav a[href='/segments']")
    await page.click("#new-segment")
    await expect(page).to_have_url(re.compile(r"/segments/new$"))
    await page.select_option("#segment-kind", "static")
    await expect(page.locator("#builder")).to_be_hidden()
    await page.select_option("#segment-kind", "dynamic")
    await expect(page.locator("#builder")).to_be_visible()
    root = page.locator("#builder > .seg-group")
    count = page.locator("#live-count")

    await root.locator(".seg-cond [data-part=value]").first.fill("Moscow")
    await expect(count).to_have_text("3")

    await root.locator(":scope > .seg-head .add-group").click()
    inner = root.locator(":scope > .seg-children > .seg-group")
    await expect(inner).to_have_count(1)
    await expect(inner.locator(".group-kind")).to_have_value("any")
    first = inner.locator(".seg-cond").first
    await first.locator("[data-part=field]").select_option("tag")
    await first.locator("[data-part=value]").fill("vip")
    await expect(count).to_have_text("1")
    await inner.locator(":scope > .seg-head .add-condition").click()
    second = inner.locator(".seg-cond").nth(1)
    await second.locator("[data-part=field]").select_option("deal")
    await second.locator("[data-part=op]").select_option("open")
    await expect(count).to_have_text("2")
    await expect(count).to_have_attribute("data-state", "ready")
    await expect(page.locator("#live-sample li")).to_have_count(2)
    await expect(page.locator("#live-sample")).to_contain_text("Boris Moscow Deal")

    # Choosing the pipeline offers its stages; Boris's deal is in its first one.
    await second.locator("[data-part=pipeline]").select_option(index=1)
    stage = second.locator("[data-part=stage]")
    await expect(stage.locator("option")).to_have_count(6)  # any stage + the five shipped
    await stage.select_option(index=1)
    await expect(count).to_have_text("2")
    await stage.select_option(index=2)
    await expect(count).to_have_text("1")
    await stage.select_option(index=0)
    await expect(count).to_have_text("2")

    # A bad value is shown on its own node, and the count says it cannot count.
    await first.locator("[data-part=value]").fill(" ")
    await expect(first.locator(".node-error")).to_contain_text("rules.all[1].any[0].value")
    await expect(count).to_have_attribute("data-state", "failed")
    await first.locator("[data-part=value]").fill("vip")
    await expect(count).to_have_text("2")
    await expect(first.locator(".node-error")).to_be_hidden()
    await screenshot(page, "segment-builder")

    await page.fill("#segment-name", "Moscow: VIP or dealing")
    await page.click("#segment-save")
    await expect(page).to_have_url(re.compile(r"/segments/\d+$"))
    segment_id = int(page.url.rsplit("/", 1)[1])
    _, saved = await segments.get(console.app[DATABASE], segment_id)
    assert saved == 2
    await expect(page.locator("#live-count")).to_have_text("2")
    await expect(
        page.locator("#builder > .seg-group > .seg-children > .seg-group .seg-cond")
    ).to_have_count(2)
    await page.click("nav a[href='/segments']")
    await page.click(f".count-now[data-segment='{segment_id}']")
    await expect(page.locator(f".segment-count[data-segment='{segment_id}']")).to_have_text("2")
    assert failures == []
