"""What comes back from a campaign, through the one inbound path, on both databases.

Campaigns are started, frozen and written by the real services (the jobs'
own functions); a message counts as sent once the outbox's claim took it
and its sent time is recorded, as the dispatcher records it. Replies,
feedback-loop reports (RFC 5965) and mailto unsubscribes arrive as raw bytes
or gateway events through the hub's filing writer, as a mailbox or a gateway
hands them in. Each test looks at what a person sees: the card, the
campaign's results, the consent ledger, and whether a queued message still
goes out when its turn comes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update
from test_email_imap import PASSWORD, USER, eventually
from test_email_imap import hub as imap_hub

from app_fixtures import accounts, client, operator, settings
from commhub.channels import EmailArrived, SmsReceived
from commhub.domain.campaigns import CampaignChannel
from commhub.domain.consent import Purpose
from commhub.domain.contacts import ConsentChoice, ContactDraft
from commhub.domain.phones import parse_phone
from commhub.models import (
    CampaignRecipient,
    ConsentEvent,
    Email,
    Interaction,
    MessageTemplate,
    Outbox,
    Suppression,
    utcnow,
)
from commhub.services import campaign_jobs, campaigns, contacts
from commhub.services.campaigns import CampaignDraft, Senders
from commhub.services.inbound import Inbound
from commhub.services.live import LiveFeed
from commhub.store import outbox as claims
from commhub.store.engine import SessionFactory
from daylight import midday_zone
from dovecot import DovecotServer
from feedback_reports import feedback_report
from static_lists import static_list

MAILBOX = "news"
ADDRESS = "news@example.com"
GATEWAY = "gw"
OUR_NUMBER = "+15005550006"
SENDERS = Senders(
    mailboxes={MAILBOX: (ADDRESS, "Example News")}, sms_gateways={GATEWAY: (OUR_NUMBER,)}
)
_uids = itertools.count(1)
Client = TestClient[Any, Any]
__all__ = ["accounts", "client", "operator", "settings"]  # the app's fixtures, on both databases


def phone(n: int) -> str:
    return f"+7495{2000000 + n:07d}"


def email_of_person(n: int) -> str:
    return f"p{n}@client.example"


@pytest.fixture
async def hub(sessions: SessionFactory) -> AsyncIterator[Inbound]:
    """The hub's inbound path: the one filing writer with its e-mail and SMS steps."""
    inbound = Inbound(db=sessions, feed=LiveFeed(), region="RU")
    inbound.mail.add_mailbox(MAILBOX, ADDRESS)
    await inbound.start()
    yield inbound
    await inbound.stop()


async def people(sessions: SessionFactory, count: int) -> list[int]:
    """``count`` people with an address, a number and marketing consent on both."""
    ids = []
    for n in range(count):
        view = await contacts.create_contact(
            sessions,
            ContactDraft(
                name=f"Person {n}",
                emails=(email_of_person(n),),
                phones=(parse_phone(phone(n), "RU"),),
                consents=(
                    ConsentChoice("email", "marketing", True),
                    ConsentChoice("sms", "marketing", True),
                ),
            ),
            owner_id=None,
            source="test",
        )
        ids.append(view.id)
    return ids


async def campaign(
    sessions: SessionFactory,
    members: list[int],
    *,
    channel: CampaignChannel = CampaignChannel.EMAIL,
    name: str = "December news",
    purpose: Purpose = Purpose.MARKETING,
) -> int:
    """A running campaign to ``members`` whose messages are written and queued."""
    template = MessageTemplate(
        name=name,
        channel=channel.value,
        subject="News for {{ contact.first_name }}",
        text="Hello {{ contact.name }}! Unsubscribe: {{ unsubscribe_url }}",
    )
    segment_id, (template_id,) = await static_list(sessions, f"{name} list", members, template)
    templates = (
        {"email_template_id": template_id}
        if channel is CampaignChannel.EMAIL
        else {"sms_template_id": template_id}
    )
    draft = CampaignDraft(
        name=name,
        channel=channel,
        purpose=purpose,
        segment_id=segment_id,
        mailbox=MAILBOX,
        sms_gateway=GATEWAY,
        **templates,
    )
    created = await campaigns.create(sessions, draft, user_id=None)
    await campaigns.start(sessions, created.id, SENDERS)
    assert await campaign_jobs.freeze(sessions, created.id) == len(members)
    written = await campaign_jobs.fill(
        sessions, created.id, 0, public_url="https://hub.example", zone=midday_zone()
    )
    assert written == len(members)
    return created.id


async def row_of(sessions: SessionFactory, campaign_id: int, contact_id: int) -> Outbox:
    async with sessions() as session:
        row = await session.scalar(
            select(Outbox).where(Outbox.campaign_id == campaign_id, Outbox.contact_id == contact_id)
        )
    assert row is not None
    return row


async def send(
    sessions: SessionFactory, campaign_id: int, contact_id: int, *, at: datetime | None = None
) -> Interaction:
    """The dispatcher's part: claim the person's message and record it sent (at ``at``)."""
    row = await row_of(sessions, campaign_id, contact_id)
    async with sessions() as session:
        taken = await claims.claim(session, holder="test", ids=[row.id])
        assert row.id in taken, "the claim refused a message that may go"
        await session.execute(
            update(Outbox)
            .where(Outbox.id == row.id)
            .values(state=claims.SENT, sent_at=at or utcnow(), claimed_by=None)
        )
        await session.execute(
            update(Interaction).where(Interaction.id == row.interaction_id).values(status="sent")
        )
        await session.commit()
        message = await session.get(Interaction, row.interaction_id)
    assert message is not None
    return message


async def claimable(sessions: SessionFactory, campaign_id: int, contact_id: int) -> bool:
    """Whether the person's queued message is taken when its turn comes (the one claim)."""
    row = await row_of(sessions, campaign_id, contact_id)
    async with sessions() as session:
        taken = await claims.claim(session, holder="test", ids=[row.id])
    return row.id in taken


async def mail_in(hub: Inbound, raw: bytes) -> None:
    """``raw`` found in the watched mailbox, handed in as the mailbox adapter does."""
    event = EmailArrived(
        source=MAILBOX,
        folder="INBOX",
        uidvalidity=1,
        uid=next(_uids),
        raw=raw,
        settled=asyncio.get_running_loop().create_future(),
        received_at=utcnow(),
    )
    hub.sink(event)
    await asyncio.wait_for(event.settled, 10)


async def sms_in(hub: Inbound, sender: str, text: str) -> None:
    event = SmsReceived(
        source=GATEWAY,
        external_id=f"SM{next(_uids)}",
        sender=sender,
        recipient=OUR_NUMBER,
        text=text,
        received_at=utcnow(),
        settled=asyncio.get_running_loop().create_future(),
    )
    hub.sink(event)
    assert event.settled is not None
    await asyncio.wait_for(event.settled, 10)


def reply(n: int, message_id: str, subject: str, *, headers: str = "") -> bytes:
    return (
        f"From: Person {n} <{email_of_person(n)}>\r\nTo: {ADDRESS}\r\nSubject: {subject}\r\n"
        f"Date: Tue, 01 Dec 2026 12:00:00 +0000\r\nMessage-ID: <{message_id}>\r\n"
        f"{headers}\r\nThank you, tell me more.\r\n"
    ).encode()


async def inbound_card(sessions: SessionFactory, contact_id: int) -> list[Interaction]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(Interaction)
                .where(Interaction.contact_id == contact_id, Interaction.direction == "in")
                .order_by(Interaction.id)
            )
        )


async def ledger(sessions: SessionFactory, contact_id: int) -> list[ConsentEvent]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(ConsentEvent)
                .where(ConsentEvent.contact_id == contact_id, ConsentEvent.granted.is_(False))
                .order_by(ConsentEvent.id)
            )
        )


async def suppressed(sessions: SessionFactory) -> dict[tuple[str, str], str]:
    async with sessions() as session:
        return {
            (s.channel, s.address): s.reason for s in await session.scalars(select(Suppression))
        }


async def token_of(sessions: SessionFactory, campaign_id: int, contact_id: int) -> str:
    async with sessions() as session:
        token = await session.scalar(
            select(CampaignRecipient.token).where(
                CampaignRecipient.campaign_id == campaign_id,
                CampaignRecipient.contact_id == contact_id,
            )
        )
    assert token is not None
    return token


# Replies


async def test_a_reply_to_a_campaign_email_is_on_the_card_with_the_campaign(
    sessions: SessionFactory, hub: Inbound, client: Client, operator: dict[str, str]
) -> None:
    first, second = await people(sessions, 2)
    news = await campaign(sessions, [first, second])
    ours = await send(sessions, news, first)
    await send(sessions, news, second)

    await mail_in(
        hub,
        reply(0, "r1@client.example", "Re: News", headers=f"In-Reply-To: <{ours.external_id}>\r\n"),
    )
    # The answer to our answer still names the campaign's message in References.
    await mail_in(
        hub,
        reply(
            0,
            "r2@client.example",
            "Re: Re: News",
            headers="In-Reply-To: <op-1@example.com>\r\n"
            f"References: <{ours.external_id}> <op-1@example.com>\r\n",
        ),
    )
    await mail_in(hub, reply(1, "r3@client.example", "Another matter"))

    answered, again = await inbound_card(sessions, first)
    assert answered.campaign_id == news and again.campaign_id == news
    [unrelated] = await inbound_card(sessions, second)
    assert unrelated.campaign_id is None
    async with sessions() as session:
        threads = {
            e.interaction_id: e.thread_id
            for e in await session.scalars(
                select(Email).where(Email.interaction_id.in_([ours.id, answered.id]))
            )
        }
    assert threads[answered.id] == threads[ours.id]
    counts = (await campaigns.progress(sessions, news)).counts
    assert counts["replied"] == 1

    card = await client.get(f"/api/v1/contacts/{first}/timeline", headers=operator)
    shown = {item["id"]: item["campaign_id"] for item in (await card.json())["items"]}
    assert shown == {ours.id: news, answered.id: news, again.id: news}


async def test_an_sms_from_a_recent_campaigns_number_is_its_reply_and_stop_still_opts_out(
    sessions: SessionFactory, hub: Inbound
) -> None:
    first, second, third = await people(sessions, 3)
    spring = await campaign(sessions, [first, third], channel=CampaignChannel.SMS, name="Spring")
    summer = await campaign(sessions, [first], channel=CampaignChannel.SMS, name="Summer")
    now = utcnow()
    await send(sessions, spring, first, at=now - timedelta(days=3))
    await send(sessions, summer, first, at=now - timedelta(days=1))
    await send(sessions, spring, third, at=now - timedelta(days=8))  # outside the 7-day window

    await sms_in(hub, "8 (495) 200-00-00", "Sounds good, call me")  # a number written locally
    await sms_in(hub, phone(2), "What is this about?")
    await sms_in(hub, phone(1), "Hello")  # got no campaign at all
    await sms_in(hub, phone(0), "STOP")

    answered, stop = await inbound_card(sessions, first)
    assert answered.campaign_id == summer, "the latest campaign it got"
    assert stop.campaign_id == summer
    [late] = await inbound_card(sessions, third)
    assert late.campaign_id is None
    [other] = await inbound_card(sessions, second)
    assert other.campaign_id is None
    assert ("sms", phone(0)) in await suppressed(sessions)
    assert (await campaigns.progress(sessions, summer)).counts["replied"] == 1
    assert (await campaigns.progress(sessions, spring)).counts["replied"] == 0


async def test_with_the_window_at_zero_sms_replies_are_not_threaded(
    sessions: SessionFactory,
) -> None:
    [person] = await people(sessions, 1)
    spring = await campaign(sessions, [person], channel=CampaignChannel.SMS)
    await send(sessions, spring, person)
    inbound = Inbound(db=sessions, feed=LiveFeed(), region="RU", campaign_reply_window=timedelta(0))
    await inbound.start()
    try:
        await sms_in(inbound, phone(0), "Yes")
    finally:
        await inbound.stop()
    [answer] = await inbound_card(sessions, person)
    assert answer.campaign_id is None


# Complaints


@pytest.mark.parametrize("attached", ["message", "headers"])
async def test_a_complaint_withdraws_consent_suppresses_and_withholds_what_is_queued(
    sessions: SessionFactory, hub: Inbound, attached: str
) -> None:
    first, second = await people(sessions, 2)
    news = await campaign(sessions, [first, second])
    later = await campaign(sessions, [first, second], name="January news")
    ours = await send(sessions, news, first)

    report = feedback_report(
        ours.external_id,
        sender=ADDRESS,
        recipient=email_of_person(0),
        attached=attached,
        report_id="fbl-77@fbl.isp.example",
    )
    await mail_in(hub, report)

    [event] = await ledger(sessions, first)
    assert (event.channel, event.purpose, event.source) == ("email", "marketing", "complaint")
    assert "fbl-77@fbl.isp.example" in event.evidence and "abuse" in event.evidence
    assert f"campaign {news}" in event.evidence
    assert ("email", email_of_person(0)) in await suppressed(sessions)
    assert (await row_of(sessions, news, first)).state == "complained"
    assert (await campaigns.progress(sessions, news)).counts["complained"] == 1
    [shown] = await inbound_card(sessions, first)
    assert shown.extra["kind"] == "complaint" and shown.extra["feedback_type"] == "abuse"
    assert shown.campaign_id is None, "a report is no reply"

    assert not await claimable(sessions, later, first)
    assert (await row_of(sessions, later, first)).state == "withheld"
    assert await claimable(sessions, later, second), "the others still get theirs"

    await mail_in(hub, report)  # the same report found again
    assert len(await ledger(sessions, first)) == 1


async def test_a_complaint_on_a_service_campaign_withdraws_service_consent(
    sessions: SessionFactory, hub: Inbound
) -> None:
    [person] = await people(sessions, 1)
    notices = await campaign(sessions, [person], name="Invoice notices", purpose=Purpose.SERVICE)
    ours = await send(sessions, notices, person)
    await mail_in(
        hub, feedback_report(ours.external_id, sender=ADDRESS, recipient=email_of_person(0))
    )
    [event] = await ledger(sessions, person)
    assert (event.channel, event.purpose) == ("email", "service")


async def test_a_complaint_whose_original_is_unknown_acts_on_the_recipient_it_names(
    sessions: SessionFactory, hub: Inbound
) -> None:
    [person] = await people(sessions, 1)
    await mail_in(
        hub,
        feedback_report(
            "long-gone@example.com", sender=ADDRESS, recipient=email_of_person(0), attached="none"
        ),
    )
    [event] = await ledger(sessions, person)
    assert (event.channel, event.purpose, event.source) == ("email", "marketing", "complaint")
    assert ("email", email_of_person(0)) in await suppressed(sessions)


async def test_a_not_spam_report_changes_nothing(sessions: SessionFactory, hub: Inbound) -> None:
    [person] = await people(sessions, 1)
    news = await campaign(sessions, [person])
    ours = await send(sessions, news, person)
    await mail_in(
        hub,
        feedback_report(
            ours.external_id, sender=ADDRESS, recipient=email_of_person(0), feedback_type="not-spam"
        ),
    )
    assert await ledger(sessions, person) == []
    assert await suppressed(sessions) == {}
    assert (await row_of(sessions, news, person)).state == "sent"


# mailto unsubscribes


async def test_a_mailto_unsubscribe_withdraws_consent_and_is_filed_on_the_card(
    sessions: SessionFactory, hub: Inbound
) -> None:
    first, second = await people(sessions, 2)
    news = await campaign(sessions, [first, second])
    later = await campaign(sessions, [first, second], name="January news")
    await send(sessions, news, first)
    token = await token_of(sessions, news, first)

    # Some mail clients write it from another address of the person's: the token says whose.
    raw = (
        f"From: someone.else@client.example\r\nTo: {ADDRESS}\r\n"
        f"Subject:   UNSUBSCRIBE {token}  \r\nMessage-ID: <unsub-1@client.example>\r\n"
        "\r\n\r\n"
    ).encode()
    await mail_in(hub, raw)

    [event] = await ledger(sessions, first)
    assert (event.channel, event.purpose, event.source) == (
        "email",
        "marketing",
        "unsubscribe e-mail",
    )
    assert f"campaign {news}" in event.evidence
    assert "unsub-1@client.example" in event.evidence
    [filed] = await inbound_card(sessions, first)
    assert filed.subject.strip() == f"UNSUBSCRIBE {token}"
    assert filed.extra["unsubscribed"] == news
    assert filed.campaign_id is None, "an unsubscribe is no reply"
    assert not await claimable(sessions, later, first)
    assert await claimable(sessions, later, second)


async def test_a_forged_token_unsubscribes_nobody_and_is_an_ordinary_message(
    sessions: SessionFactory, hub: Inbound
) -> None:
    first, second = await people(sessions, 2)
    news = await campaign(sessions, [first, second])
    real = await token_of(sessions, news, second)
    forged = real[:-1] + ("A" if real[-1] != "A" else "B")
    await mail_in(hub, reply(0, "forged@client.example", f"unsubscribe {forged}"))
    await mail_in(hub, reply(0, "words@client.example", "unsubscribe me please"))

    assert await ledger(sessions, first) == [] and await ledger(sessions, second) == []
    filed = await inbound_card(sessions, first)
    assert [row.subject for row in filed] == [f"unsubscribe {forged}", "unsubscribe me please"]
    assert all(row.extra["kind"] == "message" and "unsubscribed" not in row.extra for row in filed)
    assert await claimable(sessions, news, first) and await claimable(sessions, news, second)


async def test_a_complaint_and_a_mailto_unsubscribe_read_from_dovecot_stop_what_is_queued(
    sessions: SessionFactory, dovecot: DovecotServer
) -> None:
    dovecot.add_user(USER, PASSWORD)
    first, second, third = await people(sessions, 3)
    news = await campaign(sessions, [first, second, third])
    later = await campaign(sessions, [first, second, third], name="January news")
    ours = await send(sessions, news, first)
    token = await token_of(sessions, news, second)
    await dovecot.append(
        USER, feedback_report(ours.external_id, sender=ADDRESS, recipient=email_of_person(0))
    )
    await dovecot.append(USER, reply(1, "unsub-2@client.example", f"unsubscribe {token}"))

    async with imap_hub(sessions, dovecot):

        async def both() -> bool:
            return bool(await ledger(sessions, first)) and bool(await ledger(sessions, second))

        await eventually(both)
    [complaint] = await ledger(sessions, first)
    [unsubscribe] = await ledger(sessions, second)
    assert complaint.source == "complaint" and unsubscribe.source == "unsubscribe e-mail"
    assert (await row_of(sessions, news, first)).state == "complained"
    assert not await claimable(sessions, later, first)
    assert not await claimable(sessions, later, second)
    assert await claimable(sessions, later, third)
