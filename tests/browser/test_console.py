"""The console in a real browser: what operators, managers and admins see and click.

Each test drives Debian's headless Chromium through the pages as a person
would, against the hub on loopback whose PBX replays calls recorded from a
real Asterisk, and saves screenshots of the main screens under
``artifacts/screenshots/``.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from browsing import (
    Console,
    live_feed_open,
    log_in,
    play_at_once,
    play_paced,
    recording,
    screenshot,
    settle,
)
from openpyxl import load_workbook
from playwright.async_api import Download, Page, expect

from commhub.domain.contacts import ContactDraft
from commhub.domain.phones import parse_phone
from commhub.services import contacts
from commhub.web.live import close_live_sockets


async def test_operator_logs_in_through_the_form_and_lands_on_home(page: Page) -> None:
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/login"))
    await page.fill("input[name=username]", "operator")
    await page.fill("input[name=password]", "not the password")
    await page.click("form[action='/login'] button[type=submit]")
    await expect(page.locator("[role=alert]")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/login"))

    await log_in(page, "operator")
    await expect(page.locator("h1")).to_have_text("Hello, operator")
    await expect(page.locator("#missed-calls, #calls-today")).to_have_count(0)
    await expect(page.get_by_text("No calls yet today.")).to_be_visible()
    await screenshot(page, "home")


async def test_screen_pop_appears_while_the_phone_rings_and_opens_the_card(
    page: Page, console: Console
) -> None:
    await log_in(page, "operator")
    await live_feed_open(page)
    call = play_paced(console, "inbound_answered_ru_trunk_prefix")

    pop = page.locator("#screen-pops .pop[data-match=match]")
    await expect(pop.locator(".pop-name")).to_have_text("Ivan Petrov")
    # The recorded phone rings for two seconds before the operator picks up.
    assert not call.answered(), "the screen pop came only after the call was answered"
    await expect(pop).to_contain_text("Acme")
    await expect(pop).to_contain_text("vip")
    await screenshot(page, "screen-pop")

    await pop.get_by_role("link", name="Open card").click()
    await expect(page).to_have_url(re.compile(rf"/contacts/{console.ivan}$"))
    await expect(page.locator("h1#card-name")).to_have_text("Ivan Petrov")
    await expect(page.locator("#card-phones")).to_contain_text("916")
    await call.finish()
    await page.reload()
    await expect(page.locator("ol#timeline li[data-interaction]")).to_have_count(1)
    await screenshot(page, "card")


async def test_the_live_feed_comes_back_by_itself_after_a_drop(
    page: Page, console: Console
) -> None:
    await log_in(page, "operator")
    await live_feed_open(page)
    await close_live_sockets(console.app)  # what a restart or a network blip does to it
    state = page.locator("#feed-state")
    await expect(state).not_to_have_attribute("data-state", "open")
    await live_feed_open(page)  # reconnected without a reload
    call = play_paced(console, "inbound_answered_ru_trunk_prefix")
    pop = page.locator("#screen-pops .pop[data-match=match]")
    await expect(pop.locator(".pop-name")).to_have_text("Ivan Petrov")
    await call.finish()


async def test_unknown_caller_pops_with_the_number_and_a_create_contact_form(
    page: Page, console: Console
) -> None:
    await log_in(page, "operator")
    await live_feed_open(page)
    call = play_paced(console, "inbound_queue_answered")

    pop = page.locator("#screen-pops .pop[data-match=unknown]")
    await expect(pop.locator(".pop-number")).to_have_text(re.compile(r"495.*777.*88.*99"))
    await expect(pop).to_contain_text("sales")
    form = pop.locator("form.pop-create")
    await expect(form.locator("input[name=phones]")).to_have_value("+74957778899")
    await screenshot(page, "screen-pop-unknown")

    await form.locator("input[name=name]").fill("Olga Smirnova")
    await form.locator("input[name=company]").fill("Roga i Kopyta")
    await form.get_by_role("button").click()
    await expect(page.locator("h1#card-name")).to_have_text("Olga Smirnova")
    await expect(page.locator("#card-phones")).to_contain_text("777")
    await call.finish()


async def test_operator_finds_the_contact_and_click_to_call_reaches_the_pbx(
    page: Page, console: Console
) -> None:
    console.pbx.on_originate = recording("outbound_click_to_call_answered").body
    olga = ContactDraft(name="Olga Smirnova", phones=(parse_phone("+74957778899", "RU"),))
    await contacts.create_contact(console.hub.sessions, olga, owner_id=None, source="test")
    await log_in(page, "operator")
    await page.get_by_role("navigation").get_by_role("link", name="Contacts").click()
    search = page.locator("form#contact-search")
    await search.locator("input[name=phone]").fill("8 916 123-45-67")
    await search.locator("input[name=phone]").press("Enter")
    found = page.locator("table#contacts tbody tr")
    await expect(found).to_have_count(1)
    await expect(found).to_contain_text("Ivan Petrov")
    await screenshot(page, "contacts")
    await page.locator("table#contacts").get_by_role("link", name="Ivan Petrov").click()
    await expect(page.locator("h1#card-name")).to_have_text("Ivan Petrov")

    await page.locator("#card-phones form.call-form button").first.click()
    await expect(page.locator(".notice")).to_contain_text("pick up your phone")
    await expect(page.locator("h1#card-name")).to_have_text("Ivan Petrov")
    action = await console.pbx.wait_for_action("Originate")
    assert action["Channel"] == "PJSIP/201"
    assert action["Exten"] == "89161234567" and action["Context"] == "from-internal"
    originates = [a for a in console.pbx.actions if a.get("Action") == "Originate"]
    assert len(originates) == 1

    # The PBX plays the recorded call the Originate started: it lands on the card.
    await settle(console.hub, calls=1)
    await page.reload()
    call = page.locator("ol#timeline li[data-interaction]")
    await expect(call).to_have_count(1)
    await expect(call).to_contain_text("out")
    await expect(call).to_contain_text("answered")


async def test_operator_is_denied_the_manager_and_admin_pages(page: Page) -> None:
    await log_in(page, "operator")
    nav = page.locator("header nav")
    await expect(nav.get_by_role("link", name="Home")).to_be_visible()
    for path in ("/log", "/admin/users", "/admin/channels", "/dashboard"):
        await expect(nav.locator(f"a[href='{path}']")).to_have_count(0)

    for path in ("/log", "/admin/users"):
        response = await page.goto(path)
        assert response is not None and response.status == 403, path
        await expect(page.locator("h1")).to_have_text("Not allowed")
    await screenshot(page, "denied")


async def download(page: Page, link: str) -> tuple[Download, Path]:
    async with page.expect_download() as started:
        await page.click(link)
    done = await started.value
    path = await done.path()
    return done, path


async def test_manager_filters_the_log_and_exports_what_is_shown(
    page: Page, console: Console
) -> None:
    await play_at_once(
        console,
        "inbound_answered_ru_trunk_prefix",
        "inbound_missed_no_answer",
        "inbound_queue_answered",
    )
    await log_in(page, "manager")
    await page.goto("/log")
    rows = page.locator("table tbody tr")
    await expect(rows).to_have_count(3)

    filters = page.locator("form#log-filters")
    await filters.locator("[name=channel]").select_option("call")
    await filters.locator("[name=status]").select_option("missed")
    await filters.locator("button[type=submit]").click()
    await expect(page).to_have_url(re.compile(r"status=missed"))
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Ivan Petrov")
    await screenshot(page, "log")

    csv_file, csv_path = await download(page, "a#export-csv")
    assert csv_file.suggested_filename.endswith(".csv")
    header, *lines = csv.reader(io.StringIO(csv_path.read_text(encoding="utf-8-sig")))
    assert header[:4] == ["Time", "Channel", "Direction", "Status"], header
    [missed] = [dict(zip(header, line, strict=True)) for line in lines]
    assert missed["Channel"] == "call" and missed["Status"] == "missed"
    assert missed["Contact"] == "Ivan Petrov" and missed["Contact ID"] == str(console.ivan)

    xlsx_file, xlsx_path = await download(page, "a#export-xlsx")
    assert xlsx_file.suggested_filename.endswith(".xlsx")
    # Playwright keeps a download under a name without extension, which openpyxl refuses.
    sheet = load_workbook(io.BytesIO(xlsx_path.read_bytes()), read_only=True).active
    assert sheet is not None
    first, *cells = list(sheet.iter_rows(values_only=True))
    assert list(first) == header
    [row] = [dict(zip(header, line, strict=True)) for line in cells]
    assert row["Status"] == "missed" and row["Contact ID"] == console.ivan
    assert row["Contact"] == "Ivan Petrov"


async def test_manager_and_admin_screens(page: Page, console: Console) -> None:
    await play_at_once(console, "inbound_answered_ru_trunk_prefix")
    await log_in(page, "manager")
    await page.goto("/dashboard")
    operator_row = page.locator("table#operator-results tbody tr", has_text="operator")
    await expect(operator_row).to_contain_text("0:08")  # the recorded call's talk time
    await screenshot(page, "dashboard")

    await page.goto("/live")
    await live_feed_open(page)
    call = play_paced(console, "inbound_answered_e164_with_name")
    # The call appears ringing, turns answered when the operator picks up, then goes.
    talking = page.locator("table#live-calls tbody tr[data-status=answered]")
    await expect(talking).to_contain_text("operator")
    await expect(talking).to_contain_text("555-01-01")
    await screenshot(page, "live")
    await call.finish()
    await expect(page.locator("table#live-calls tbody tr")).to_have_count(0)

    await page.context.clear_cookies()
    await log_in(page, "admin")
    await page.goto("/admin/users")
    await expect(page.locator("table#users")).to_contain_text("operator")
    await screenshot(page, "admin-users")
    await page.goto("/admin/channels")
    await expect(page.locator("table#channels")).to_contain_text("main")
    await screenshot(page, "admin-channels")
