"""The pipelines page in a real browser: no script needed to reorder or to remove a stage."""

from __future__ import annotations

from browsing import Console, log_in, screenshot
from playwright.async_api import Page, expect
from sqlalchemy import select

from commhub.domain.roles import Role
from commhub.models import Stage, User
from commhub.services import deals
from commhub.web.keys import DATABASE


async def test_admin_moves_a_stage_down_and_removes_one_holding_a_deal(
    page: Page, console: Console
) -> None:
    db = console.app[DATABASE]
    async with db() as session:
        admin = await session.scalar(select(User).where(User.username == "admin"))
        working = await session.scalar(select(Stage).where(Stage.preset == "in_progress"))
        assert admin is not None and working is not None
    await deals.create_deal(
        db,
        deals.DealDraft(title="Boiler", currency="RUB", amount="1200.00", stage_id=working.id),
        deals.actor(admin.id, Role.ADMIN),
    )
    await log_in(page, "admin")
    await page.click("nav >> text=Pipelines")
    await expect(page.locator("h1")).to_have_text("Pipelines")
    assert await _names(page) == [
        "New lead",
        "In progress",
        "Proposal / invoice",
        "Won (paid)",
        "Lost",
    ]
    await page.click("button[aria-label='Move New lead down']")
    await expect(page.get_by_text("Stages reordered.")).to_be_visible()
    assert await _names(page) == [
        "In progress",
        "New lead",
        "Proposal / invoice",
        "Won (paid)",
        "Lost",
    ]
    row = page.locator(f"tr[data-stage='{working.id}']")
    await expect(row.locator("td.deals")).to_have_text("1")
    await row.locator("select[name=move_to]").select_option(label="Proposal / invoice")
    await screenshot(page, "admin-pipelines")
    await row.locator("form.stage-remove button[type=submit]").click()
    await expect(page.get_by_text("Stage removed; deals moved: 1.")).to_be_visible()
    assert await _names(page) == ["New lead", "Proposal / invoice", "Won (paid)", "Lost"]
    moved_to = page.locator("tr", has=page.locator("input[value='Proposal / invoice']"))
    await expect(moved_to.locator("td.deals")).to_have_text("1")


async def _names(page: Page) -> list[str]:
    """The stages' names as their rename fields show them, top to bottom."""
    fields = page.locator("table.stages tbody tr input[name=name]")
    return [await field.input_value() for field in await fields.all()]
