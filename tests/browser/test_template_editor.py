"""The template editor in a real browser: the preview follows the typing, for the
made-up client and for a chosen contact; an SMS shows its encoding and parts; an
e-mail's HTML is shown in a frame where its scripts do not run."""

from __future__ import annotations

from browsing import Console, log_in, screenshot
from playwright.async_api import Page, expect

from commhub.services import segments
from commhub.web.keys import DATABASE


async def test_typing_updates_the_preview_for_the_virtual_client_and_a_contact(
    page: Page, console: Console
) -> None:
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    await log_in(page, "marketer")
    await page.goto("/templates")
    await page.click("#new-sms-template")
    await page.fill("#template-name", "Greeting")
    await page.fill("#template-language", "en")
    await page.fill("#template-text", "Hello {{ contact.name }}!")
    text = page.locator("#preview-text")
    await expect(text).to_have_text("Hello Alex Morgan!")
    shape = page.locator("#preview-sms")
    await expect(shape).to_contain_text("GSM-7")
    await expect(shape).to_have_attribute("data-segments", "1")

    await page.fill("#contact-search", "Ivan")
    await page.click("#contact-results .choose-contact")
    await expect(page.locator("#preview-contact")).to_have_text("Ivan Petrov")
    await expect(text).to_have_text("Hello Ivan Petrov!")

    await page.fill("#template-text", "Привет, {{ contact.name }}! " * 4)
    await expect(text).to_contain_text("Привет, Ivan Petrov!")
    await expect(shape).to_contain_text("UCS-2")
    await expect(shape).to_have_attribute("data-segments", "2")

    await page.fill("#template-text", "Hello {{ contact.name ")
    await expect(page.locator("#preview-error")).to_contain_text("line 1")
    await screenshot(page, "template-editor-sms")

    await page.fill("#template-text", "Hello {{ contact.first_name }}")
    await page.click("#template-save")
    await expect(page.locator(".notice-ok")).to_contain_text("Template Greeting saved.")
    await expect(text).to_have_text("Hello Alex")  # the saved editor previews again
    assert failures == []


async def test_an_email_preview_shows_html_in_a_frame_that_runs_no_script(
    page: Page, console: Console
) -> None:
    await log_in(page, "marketer")
    await page.goto("/templates/new")
    await page.fill("#template-name", "Hostile")
    await page.fill("#template-language", "en")
    await page.fill("#template-subject", "Hi {{ contact.first_name }}")
    await page.fill("#template-text", "Hi {{ contact.first_name }}")
    await page.fill(
        "#template-html",
        "<p id='hello' style='color: rgb(200, 0, 0)'>Hi {{ contact.first_name }}</p>"
        "<script>parent.document.title = 'owned'; document.body.append('ran')</script>"
        "<img src=x onerror=\"parent.document.title='owned'\">",
    )
    frame = page.locator("#preview-html")
    await expect(frame).to_be_visible()
    await expect(frame).to_have_attribute("sandbox", "")
    await expect(page.frame_locator("#preview-html").locator("#hello")).to_have_text("Hi Alex")
    # Its styles show, as the e-mail will look (the frame has a received e-mail's policy).
    hello = page.frame_locator("#preview-html").locator("#hello")
    color = await hello.evaluate("node => getComputedStyle(node).color")
    assert color == "rgb(200, 0, 0)"
    await expect(page.locator("#preview-subject")).to_have_text("Hi Alex")
    await page.wait_for_timeout(300)
    assert await page.title() != "owned"
    body = await page.frame_locator("#preview-html").locator("body").inner_text()
    assert "ran" not in body


async def test_who_lacks_a_value_and_a_test_without_a_mailbox_are_answered_on_the_page(
    page: Page, console: Console
) -> None:
    listed = await segments.create(
        console.app[DATABASE], name="Just Ivan", kind="static", user_id=None
    )
    await segments.add_members(console.app[DATABASE], listed.id, [console.ivan])
    await log_in(page, "marketer")
    await page.goto("/templates/new")
    await page.fill("#template-subject", "Hi")
    await page.fill(
        "#template-text", "Hi {{ contact.first_name }}, we write to {{ contact.email }}"
    )
    await page.select_option("#gaps-segment", label="Just Ivan")
    await page.click("#gaps-check")
    await expect(page.locator("#gaps-result")).to_have_text(
        "1 of the first 1 members (1 in all) lack a value"
    )
    await expect(page.locator("#gaps-people")).to_contain_text("Ivan Petrov")
    await expect(page.locator("#gaps-people")).to_contain_text("— email")
    await page.fill("#test-to", "me@example.com")
    await page.click("#test-send")
    await expect(page.locator("#test-result")).to_contain_text("Not sent: mailbox:")
