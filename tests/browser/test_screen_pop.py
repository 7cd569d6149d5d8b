"""The screen pop in a real browser: its states, Escape, pages changed mid-call, the PBX link.

Calls are recordings from a real Asterisk played to the hub's AMI link: at
their recorded pace where the test watches a call move on, or only their
first part (a phone that goes on ringing, a conversation that goes on) where
the test needs a call to stay up while the operator moves around.
"""

from __future__ import annotations

import re

from browsing import Console, live_feed_open, log_in, play_paced, recording, screenshot
from playwright.async_api import Page, expect

from ami_replay import Playback

RINGING = "reconnect_while_ringing.part1"
"""Ext. 201 rings with +7 916 555-00-22 (on no card) and nobody answers while the test runs."""
TALKING = "reconnect_mid_call.part1"
"""Ext. 201 answered +7 916 555-00-11 and goes on talking while the test runs."""

GREEN = "rgb(26, 127, 55)"  # --ok
RED = "rgb(180, 35, 24)"  # --bad
ENDED_BACKGROUND = "rgb(246, 248, 250)"
ENDED_POP_S = 15


def state_class(stage: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s)pop-{stage}(\s|$)")


async def test_the_pop_follows_the_call_from_ringing_to_answered_to_ended(
    page: Page, console: Console
) -> None:
    await log_in(page, "operator")
    await live_feed_open(page)
    call = play_paced(console, "inbound_answered_ru_trunk_prefix")

    pop = page.get_by_role("alertdialog", name="Ivan Petrov")
    state = pop.locator(".pop-state")
    await expect(state).to_have_text("Ringing…")
    await expect(pop).to_have_class(state_class("ringing"))
    assert not call.answered(), "the pop said ringing only after the call was answered"

    await expect(state).to_have_text("You answered")
    await expect(pop).to_have_class(state_class("answered"))
    await expect(pop).to_have_css("border-top-color", GREEN)
    # The call itself is no line of the caller's past.
    await expect(pop.locator(".pop-recent")).to_have_count(0)
    await expect(pop).to_contain_text("Nothing yet")
    await screenshot(page, "screen-pop-answered")

    await expect(state).to_have_text(re.compile(r"^Call ended"), timeout=15_000)
    await expect(pop).to_have_class(state_class("ended"))
    await expect(pop).to_have_css("background-color", ENDED_BACKGROUND)
    await screenshot(page, "screen-pop-ended")
    # An ended pop stays a while, then goes by itself.
    await expect(pop).to_have_count(0, timeout=(ENDED_POP_S + 5) * 1000)
    await call.finish()


async def test_a_call_nobody_answers_pops_as_missed(page: Page, console: Console) -> None:
    await log_in(page, "manager")  # ext. 202, whose phone rings ten seconds unanswered
    await live_feed_open(page)
    play_paced(console, "inbound_missed_no_answer")

    pop = page.get_by_role("alertdialog", name="Ivan Petrov")
    await expect(pop.locator(".pop-state")).to_have_text("Ringing…")
    await expect(pop.locator(".pop-state")).to_have_text("Missed call", timeout=15_000)
    await expect(pop).to_have_class(state_class("missed"))
    await expect(pop).to_have_css("border-top-color", RED)
    await screenshot(page, "screen-pop-missed")


async def test_escape_closes_the_topmost_pop(page: Page, console: Console) -> None:
    await log_in(page, "operator")
    await live_feed_open(page)
    await console.pbx.send(recording(RINGING).body)
    unknown = page.get_by_role("alertdialog", name="Unknown caller")
    await expect(unknown).to_be_visible()
    play_paced(console, "inbound_answered_ru_trunk_prefix")
    ivan = page.get_by_role("alertdialog", name="Ivan Petrov")
    await expect(ivan).to_be_visible()
    await expect(page.get_by_role("alertdialog")).to_have_count(2)
    await expect(page.get_by_role("alertdialog").first).to_have_accessible_name("Ivan Petrov")

    await page.keyboard.press("Escape")  # the newest, on top
    await expect(ivan).to_have_count(0)
    await expect(unknown).to_be_visible()

    # Escape from the pop's own form closes that pop; focus goes back to the page.
    name = unknown.locator("input[name=name]")
    await name.fill("Pavel Orlov")
    await name.press("Escape")
    await expect(page.get_by_role("alertdialog")).to_have_count(0)
    assert await page.evaluate("document.activeElement === document.body")


async def test_the_pop_comes_back_on_every_page_while_the_phone_rings(
    page: Page, console: Console
) -> None:
    await log_in(page, "operator")
    await live_feed_open(page)
    await console.pbx.send(recording(RINGING).body)
    pop = page.get_by_role("alertdialog", name="Unknown caller")
    await expect(pop.locator(".pop-state")).to_have_text("Ringing…")

    await page.get_by_role("navigation").get_by_role("link", name="Contacts").click()
    await expect(page).to_have_url(re.compile(r"/contacts$"))
    await expect(pop.locator(".pop-state")).to_have_text("Ringing…")
    await expect(pop).to_have_class(state_class("ringing"))
    await expect(pop.locator(".pop-number")).to_have_text(re.compile(r"916.*555.*00.*22"))
    await expect(pop.locator("input[name=phones]")).to_have_value("+79165550022")
    await expect(page.get_by_role("alertdialog")).to_have_count(1)

    await page.get_by_role("link", name="commhub").click()
    await expect(page.locator("h1")).to_contain_text("Hello")
    await expect(pop.locator(".pop-state")).to_have_text("Ringing…")
    await screenshot(page, "screen-pop-restored")


async def test_the_pop_comes_back_answered_and_ends_on_the_page_the_operator_went_to(
    page: Page, console: Console
) -> None:
    await log_in(page, "operator")
    await live_feed_open(page)
    call = play_paced(console, "inbound_answered_ru_trunk_prefix")
    pop = page.get_by_role("alertdialog", name="Ivan Petrov")
    await expect(pop.locator(".pop-state")).to_have_text("You answered")

    await page.get_by_role("navigation").get_by_role("link", name="Contacts").click()
    await expect(page).to_have_url(re.compile(r"/contacts$"))
    await expect(pop.locator(".pop-state")).to_have_text("You answered")
    await expect(pop).to_have_class(state_class("answered"))
    assert not call.task.done(), "the call ended before the pop came back"
    # The call ends while the operator is on the new page: the restored pop follows it.
    await expect(pop.locator(".pop-state")).to_have_text(re.compile(r"^Call ended"), timeout=15_000)
    await call.finish()
    await page.reload()
    await live_feed_open(page)
    await expect(page.get_by_role("alertdialog")).to_have_count(0)


async def test_a_conversation_in_progress_pops_on_a_page_opened_after_the_answer(
    page: Page, console: Console
) -> None:
    await console.pbx.send(recording(TALKING).body)  # answered before the operator logged in
    await log_in(page, "operator")
    pop = page.get_by_role("alertdialog", name="Unknown caller")
    await expect(pop.locator(".pop-state")).to_have_text("You answered")
    await expect(pop.locator(".pop-number")).to_have_text(re.compile(r"916.*555.*00.*11"))


async def test_every_page_says_telephony_disconnected_while_the_pbx_is_away(
    page: Page, console: Console
) -> None:
    await log_in(page, "operator")
    await live_feed_open(page)
    warning = page.locator("#telephony-state")
    dot = page.locator("#feed-state")
    await expect(dot).to_have_attribute("data-telephony", "up")
    await expect(warning).to_be_hidden()

    await console.pbx.close()  # the PBX goes away
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text("Telephony disconnected")
    await expect(dot).to_have_attribute("data-telephony", "down")
    await screenshot(page, "telephony-disconnected")
    await page.get_by_role("navigation").get_by_role("link", name="Contacts").click()
    await expect(page).to_have_url(re.compile(r"/contacts$"))
    await expect(page.get_by_role("alert")).to_contain_text("Telephony disconnected")

    # Back on the same port, with a call ringing as soon as the link logs in again.
    call = recording("inbound_answered_ru_trunk_prefix")
    console.pbx.script.append(Playback.from_recording(call, paced=True))
    await console.pbx.start()
    # The link retries every second or so (and a busy machine is slower): allow for it.
    await expect(warning).to_have_text("Telephony reconnected.", timeout=15_000)
    await expect(dot).to_have_attribute("data-telephony", "up")
    pop = page.get_by_role("alertdialog", name="Ivan Petrov")
    # The call rang as the link came back; by now 201 talks, or (a slow run) has hung up.
    await expect(pop.locator(".pop-state")).to_have_text(
        re.compile("You answered|Call ended"), timeout=15_000
    )
    await expect(warning).to_be_hidden(timeout=15_000)
