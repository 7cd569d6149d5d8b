"""A marketer sets up a campaign in the form, starts it, and watches it finish live.

The hub's mailbox sends to aiosmtpd on loopback, in a zone where it is about
midday now (so the recipients' hours are open whenever the test runs); the
page is never reloaded after the start: its numbers, bar and chart come from
the poll.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from browsing import Console, log_in, screenshot
from playwright.async_api import Page, expect

from commhub.config import Settings
from commhub.domain.contacts import ConsentChoice, ContactDraft
from commhub.models import MessageTemplate
from commhub.services import contacts
from commhub.store.engine import SessionFactory
from daylight import midday_zone
from smtp_sink import SmtpSink
from static_lists import static_list

PEOPLE = 3


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    server = SmtpSink()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink) -> Settings:
    """The browser tests' hub with a mailbox "news" as well, sending to the sink."""
    assert settings.channels_file is not None
    mailbox = (
        "\n[[channels]]\n"
        'adapter = "email"\nname = "news"\naddress = "news@example.com"\n'
        'display_name = "Example News"\nmax_message_mb = 1\n'
        "[channels.smtp]\n"
        f'host = "127.0.0.1"\nport = {sink.port}\nsecurity = "plain"\nconnections = 1\n'
    )
    path = Path(settings.channels_file)
    path.write_text(path.read_text(encoding="utf-8") + mailbox, encoding="utf-8")
    return settings.model_copy(update={"time_zone": midday_zone()})


async def _audience(sessions: SessionFactory) -> None:
    """A static list of people who agreed to marketing e-mail, and a template for them."""
    ids = []
    for n in range(PEOPLE):
        view = await contacts.create_contact(
            sessions,
            ContactDraft(
                name=f"Reader {n}",
                emails=(f"reader{n}@client.example",),
                consents=(ConsentChoice("email", "marketing", True),),
            ),
            owner_id=None,
            source="test",
        )
        ids.append(view.id)
    letter = MessageTemplate(
        name="December letter",
        channel="email",
        subject="News for {{ contact.first_name }}",
        text="Hello!\nUnsubscribe: {{ unsubscribe_url }}\n",
    )
    await static_list(sessions, "Newsletter readers", ids, letter)


async def test_marketer_starts_a_campaign_and_its_page_shows_it_finish_without_reloading(
    page: Page, console: Console, sessions: SessionFactory, sink: SmtpSink
) -> None:
    await _audience(sessions)
    await log_in(page, "marketer")
    await page.click("nav a[href='/campaigns']")
    await page.click("#new-campaign")
    await page.fill("#campaign-name", "December letter to readers")
    await page.select_option("#campaign-segment", label="Newsletter readers")
    await page.select_option("#campaign-email-template", label="December letter")
    await page.select_option("#campaign-mailbox", value="news")
    await page.fill("#campaign-rate", "2")
    await page.click("#save-campaign")
    await expect(page).to_have_url(re.compile(r"/campaigns/\d+$"))
    await expect(page.locator(".notice")).to_contain_text("Campaign saved.")

    await page.click("#start-campaign")
    await expect(page.locator(".notice")).to_contain_text("Campaign started.")
    # A mark on this very document: a reload would wipe it.
    await page.evaluate("window.stillTheSamePage = true")
    state = page.locator("#campaign-state [data-campaign-state]")
    await expect(state).to_have_attribute("data-campaign-state", "finished", timeout=30_000)
    await expect(state).to_have_text("finished")
    await expect(page.locator('[data-count="sent"]')).to_have_text(str(PEOPLE))
    await expect(page.locator("#campaign-total")).to_have_text(str(PEOPLE))
    await expect(page.locator("#campaign-percent")).to_have_text("100")
    await expect(page.locator("#campaign-bar")).to_have_attribute("value", str(PEOPLE))
    await expect(page.locator("#campaign-actions")).to_be_hidden()
    bars = page.locator("#sent-chart rect[data-sent]")
    sent_in_chart = sum(
        int(value or 0)
        for value in await bars.evaluate_all("rects => rects.map(r => r.getAttribute('data-sent'))")
    )
    assert sent_in_chart == PEOPLE
    assert await page.evaluate("window.stillTheSamePage") is True
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == [
        f"reader{n}@client.example" for n in range(PEOPLE)
    ]
    await screenshot(page, "campaign-finished")
