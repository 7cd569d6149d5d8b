"""A campaign end to end: the API, the keeper and jobs, the one outbox, a real SMTP server.

The hub runs as in the embedded default (in-process jobs, one process); the
mailbox's server is aiosmtpd on loopback. The tests assert what a marketer
and a recipient see: who got exactly one message, who was left out and why,
and that an unsubscribe stops what was not yet sent.
"""

from __future__ import annotations

import asyncio
import email
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from commhub.bootstrap import Hub, open_hub
from commhub.channels import ChannelContext, EmailArrived
from commhub.config import Settings
from commhub.domain.contacts import ConsentChoice, ContactDraft
from commhub.domain.interactions import Medium
from commhub.domain.roles import Role
from commhub.models import (
    CampaignRecipient,
    ConsentEvent,
    MessageTemplate,
)
from commhub.services import contacts
from commhub.services.email_filing import OwnAddress, file_email
from commhub.store import suppressions
from commhub.store.engine import SessionFactory
from commhub.web.app import create_app
from commhub_email import adapter
from daylight import midday_zone
from smtp_sink import SmtpSink
from static_lists import static_list

Client = TestClient[Any, Any]
ADDRESS = "news@example.com"
MARKETING = ConsentChoice("email", "marketing", True)


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    server = SmtpSink()
    await server.start()
    yield server
    await server.close()


HubClient = Callable[..., Awaitable[tuple[Client, Hub]]]


@pytest.fixture
def hub_client(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    accounts: dict[Role, Any],
) -> HubClient:
    async def start(port: int, connections: int = 1) -> tuple[Client, Hub]:
        options = {
            "address": ADDRESS,
            "display_name": "Example News",
            "max_message_mb": 1,
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "security": "plain",
                "connections": connections,
            },
        }
        channel = adapter(name="news", options=options, context=ChannelContext(phone_region="RU"))
        opened: list[Hub] = []

        async def opener() -> Hub:
            hub = await open_hub(
                settings.model_copy(
                    update={"public_url": "https://hub.example", "time_zone": midday_zone()}
                ),
                channels=[channel],
            )
            opened.append(hub)
            return hub

        client = await aiohttp_client(create_app(opener))
        return client, opened[0]

    return start


async def people(sessions: SessionFactory, count: int, **kinds: int) -> tuple[int, list[int]]:
    """A static list of ``count`` people with marketing consent, plus ``kinds`` without.

    ``no_consent``: never asked; ``refused``: said no; ``no_email``: only a phone.
    """
    ids: list[int] = []

    async def make(n: int, *, emails: tuple[str, ...], consents: tuple[ConsentChoice, ...]) -> None:
        view = await contacts.create_contact(
            sessions,
            ContactDraft(name=f"Person {n}", emails=emails, consents=consents),
            owner_id=None,
            source="test",
        )
        ids.append(view.id)

    for n in range(count):
        await make(n, emails=(f"p{n}@client.example",), consents=(MARKETING,))
    for n in range(kinds.get("no_consent", 0)):
        await make(1000 + n, emails=(f"q{n}@client.example",), consents=())
    for n in range(kinds.get("refused", 0)):
        no = ConsentChoice("email", "marketing", False)
        await make(2000 + n, emails=(f"r{n}@client.example",), consents=(no,))
    for n in range(kinds.get("no_email", 0)):
        await make(3000 + n, emails=(), consents=(MARKETING,))
    news = MessageTemplate(
        name="News",
        channel="email",
        subject="News for {{ contact.first_name }}",
        text="Hello {{ contact.name }}!\nUnsubscribe: {{ unsubscribe_url }}\n",
        html="<p>Hello {{ contact.name }}</p><a href='{{ unsubscribe_url }}'>unsubscribe</a>",
    )
    return await static_list(sessions, "Test list", ids, news)


async def create(client: Client, segment_id: int, template_id: int, **extra: Any) -> int:
    body = {
        "name": "December news",
        "channel": "email",
        "segment_id": segment_id,
        "email_template_id": template_id,
        "mailbox": "news",
        **extra,
    }
    response = await client.post("/api/v1/campaigns", json=body, headers=marketer(client))
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return int(created["id"])


MARKETER_AUTH: dict[str, str] = {}


def marketer(client: Client) -> dict[str, str]:
    """The marketer's credentials (the accounts fixture makes the same token name each test)."""
    return MARKETER_AUTH


async def shown(client: Client, campaign_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/campaigns/{campaign_id}", headers=marketer(client))
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def until(
    client: Client, campaign_id: int, state: str, timeout: float = 30.0
) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        while True:
            body = await shown(client, campaign_id)
            if body["state"] == state:
                return body
            await asyncio.sleep(0.1)

    return await asyncio.wait_for(poll(), timeout)


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.fixture
async def ready(hub_client: HubClient, sink: SmtpSink, accounts: dict[Role, Any]) -> Client:
    client, _ = await hub_client(sink.port)
    MARKETER_AUTH.clear()
    MARKETER_AUTH.update(accounts[Role.MARKETER].auth)
    return client


async def test_each_consenting_person_gets_one_message_and_the_rest_are_left_out_with_reasons(
    ready: Client, sink: SmtpSink, sessions: SessionFactory
) -> None:
    segment_id, [template_id] = await people(sessions, 12, no_consent=2, refused=1, no_email=1)
    campaign_id = await create(ready, segment_id, template_id)
    started = await ready.post(f"/api/v1/campaigns/{campaign_id}/start", headers=marketer(ready))
    assert started.status == 200, await started.text()

    done = await until(ready, campaign_id, "finished")
    counts = done["counts"]
    assert counts["recipients"] == 16
    assert counts["excluded"] == 4
    assert counts["sent"] == 12
    received = sorted(m.rcpt_tos[0] for m in sink.messages)
    assert received == sorted(f"p{n}@client.example" for n in range(12))

    message = parsed(sink.messages[0].data)
    assert re.fullmatch(r"News for Person", message["Subject"])
    text = message.get_body(("plain",))
    assert text is not None
    assert "https://hub.example/u/" in text.get_content()
    token = text.get_content().split("https://hub.example/u/")[1].split()[0]
    assert message["List-Unsubscribe"] == (
        f"<https://hub.example/u/{token}>, <mailto:{ADDRESS}?subject=unsubscribe%20{token}>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    listing = await ready.get(
        f"/api/v1/campaigns/{campaign_id}/recipients", headers=marketer(ready)
    )
    rows = (await listing.json())["items"]
    reasons = sorted(r["reason"] for r in rows if r["state"] == "excluded")
    assert reasons == ["no_address", "no_consent", "no_consent", "withdrawn"]
    assert {r["state"] for r in rows if r["state"] != "excluded"} == {"sent"}


async def test_the_unsubscribe_link_asks_then_withdraws_consent_with_evidence(
    ready: Client, sink: SmtpSink, sessions: SessionFactory
) -> None:
    segment_id, [template_id] = await people(sessions, 1)
    campaign_id = await create(ready, segment_id, template_id)
    await ready.post(f"/api/v1/campaigns/{campaign_id}/start", headers=marketer(ready))
    await until(ready, campaign_id, "finished")
    text = parsed(sink.messages[0].data).get_body(("plain",))
    assert text is not None
    link = re.search(r"https://hub\.example(/u/\S+)", text.get_content())
    assert link is not None

    page = await ready.get(link.group(1))
    assert page.status == 200
    russian = await ready.get(link.group(1), headers={"Accept-Language": "ru"})
    assert "Отписаться" in await russian.text()
    assert "p0@client.example" not in await page.text()  # masked: p***@client.example
    async with sessions() as session:
        assert (
            await session.scalars(select(ConsentEvent).where(~ConsentEvent.granted))
        ).all() == []

    done = await ready.post(link.group(1), data={"List-Unsubscribe": "One-Click"})
    assert done.status == 200
    async with sessions() as session:
        [event] = (await session.scalars(select(ConsentEvent).where(~ConsentEvent.granted))).all()
    assert event.source == "unsubscribe link"
    assert f"campaign {campaign_id}" in event.evidence
    assert "one-click" in event.evidence

    assert (await ready.get("/u/not-a-token")).status == 404

    listing = await ready.get(
        f"/api/v1/campaigns/{campaign_id}/recipients", headers=marketer(ready)
    )
    [person] = (await listing.json())["items"]
    history = await ready.get(
        f"/api/v1/contacts/{person['contact_id']}/consents", headers=marketer(ready)
    )
    assert [(e["granted"], e["source"]) for e in (await history.json())["items"]] == [
        (True, "test"),
        (False, "unsubscribe link"),
    ]


async def test_people_who_unsubscribe_mid_campaign_get_nothing_more(
    ready: Client, sink: SmtpSink, sessions: SessionFactory
) -> None:
    segment_id, [template_id] = await people(sessions, 20)
    campaign_id = await create(ready, segment_id, template_id, rate=4)
    await ready.post(f"/api/v1/campaigns/{campaign_id}/start", headers=marketer(ready))

    async def first_arrived() -> None:
        while not sink.messages:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(first_arrived(), 15)
    listing = await ready.get(
        f"/api/v1/campaigns/{campaign_id}/recipients?limit=1000", headers=marketer(ready)
    )
    last = (await listing.json())["items"][-1]
    async with sessions() as session:
        token = await session.scalar(
            select(CampaignRecipient.token).where(
                CampaignRecipient.campaign_id == campaign_id,
                CampaignRecipient.contact_id == last["contact_id"],
            )
        )
    assert (await ready.post(f"/u/{token}")).status == 200

    done = await until(ready, campaign_id, "finished", timeout=30)
    assert last["address"] not in {m.rcpt_tos[0] for m in sink.messages}
    assert len(sink.messages) == 19
    assert done["counts"]["withheld"] == 1


async def test_a_paused_campaign_sends_nothing_until_resumed_and_a_cancel_stops_the_rest(
    ready: Client, sink: SmtpSink, sessions: SessionFactory
) -> None:
    segment_id, [template_id] = await people(sessions, 30)
    campaign_id = await create(ready, segment_id, template_id, rate=10)
    await ready.post(f"/api/v1/campaigns/{campaign_id}/start", headers=marketer(ready))
    await until(ready, campaign_id, "running")
    paused = await ready.post(
        f"/api/v1/campaigns/{campaign_id}/pause",
        json={"reason": "checking"},
        headers=marketer(ready),
    )
    assert paused.status == 200
    await asyncio.sleep(1.5)  # anything in flight lands
    before = len(sink.messages)
    await asyncio.sleep(1.5)
    assert len(sink.messages) == before
    assert before < 30

    await ready.post(f"/api/v1/campaigns/{campaign_id}/resume", headers=marketer(ready))

    async def some_more() -> None:
        while len(sink.messages) < before + 3:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(some_more(), 15)
    cancelled = await ready.post(f"/api/v1/campaigns/{campaign_id}/cancel", headers=marketer(ready))
    assert cancelled.status == 200
    await asyncio.sleep(1.5)
    body = await shown(ready, campaign_id)
    assert body["state"] == "cancelled"
    sent = len(sink.messages)
    assert sent < 30
    assert len({m.rcpt_tos[0] for m in sink.messages}) == sent  # nobody twice
    again = await ready.post(f"/api/v1/campaigns/{campaign_id}/resume", headers=marketer(ready))
    assert again.status == 409


async def test_a_start_names_what_is_missing(ready: Client, sessions: SessionFactory) -> None:
    response = await ready.post(
        "/api/v1/campaigns", json={"name": "Empty"}, headers=marketer(ready)
    )
    campaign_id = (await response.json())["id"]
    started = await ready.post(f"/api/v1/campaigns/{campaign_id}/start", headers=marketer(ready))
    assert started.status == 422
    problem = await started.json()
    assert problem["errors"][0]["field"] == "segment_id" or "segment" in problem["detail"]

    night = await ready.post(
        "/api/v1/campaigns",
        json={"name": "Night", "window_from": 23 * 60, "window_to": 24 * 60},
        headers=marketer(ready),
    )
    assert night.status == 422
    assert "night" in (await night.text())


async def test_a_campaign_whose_hard_bounces_pass_the_limit_pauses_itself(
    ready: Client, sink: SmtpSink, sessions: SessionFactory
) -> None:
    segment_id, [template_id] = await people(sessions, 80)
    for n in range(0, 40, 5):  # 8 of the first 40: 10% and more once 50 went out
        sink.recorder.refuse[f"p{n}@client.example"] = "550 5.1.1 no such user"
    campaign_id = await create(ready, segment_id, template_id, rate=25)
    await ready.post(f"/api/v1/campaigns/{campaign_id}/start", headers=marketer(ready))

    paused = await until(ready, campaign_id, "paused", timeout=30)
    assert paused["state_reason"].startswith("auto-paused: hard bounces")
    assert "limit 5%" in paused["state_reason"]
    await asyncio.sleep(1.0)
    handed = len(sink.messages) + paused["counts"]["failed"]
    assert handed < 80
    assert paused["counts"]["failed"] == 8


async def test_a_marketer_sends_a_template_to_themselves_written_for_a_contact(
    ready: Client, sink: SmtpSink, sessions: SessionFactory
) -> None:
    await people(sessions, 1)
    listing = await ready.get("/api/v1/templates", headers=marketer(ready))
    template = (await listing.json())["items"][0]
    fields = {k: template[k] for k in ("name", "channel", "subject", "text", "html")}
    sent = await ready.post(
        "/api/v1/templates/test",
        json={**fields, "contact_id": 1, "to": "mia@example.com"},
        headers=marketer(ready),
    )
    assert sent.status == 202, await sent.text()

    async def arrived() -> None:
        while not sink.messages:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(arrived(), 10)
    [received] = sink.messages
    assert received.rcpt_tos == ("mia@example.com",)
    assert parsed(received.data)["Subject"] == "[test] News for Person"


async def test_a_temporary_refusal_is_tried_again_and_a_permanent_one_kept_with_its_reason(
    ready: Client, sink: SmtpSink, sessions: SessionFactory
) -> None:
    segment_id, [template_id] = await people(sessions, 6)
    sink.recorder.defer = 2  # the next two messages: 451, try again later
    sink.recorder.refuse["p5@client.example"] = "550 5.1.1 mailbox unavailable"
    campaign_id = await create(ready, segment_id, template_id)
    await ready.post(f"/api/v1/campaigns/{campaign_id}/start", headers=marketer(ready))

    done = await until(ready, campaign_id, "finished", timeout=40)
    assert done["counts"]["sent"] == 5
    assert done["counts"]["failed"] == 1
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == [
        f"p{n}@client.example" for n in range(5)
    ]
    listing = await ready.get(
        f"/api/v1/campaigns/{campaign_id}/recipients?state=failed", headers=marketer(ready)
    )
    [failed] = (await listing.json())["items"]
    assert failed["address"] == "p5@client.example"
    assert "550" in failed["reason"]


async def test_a_campaign_to_a_dynamic_segment_reaches_who_the_rules_held_at_its_start(
    ready: Client, sink: SmtpSink, sessions: SessionFactory
) -> None:
    for n, tags in enumerate([("vip",), ("vip", "moscow"), (), ("moscow",)]):
        await contacts.create_contact(
            sessions,
            ContactDraft(
                name=f"Client {n}",
                emails=(f"c{n}@client.example",),
                tags=tags,
                consents=(MARKETING,),
            ),
            owner_id=None,
            source="test",
        )
    rules = {
        "any": [
            {"field": "tag", "op": "has", "value": "vip"},
            {
                "all": [
                    {"field": "tag", "op": "has", "value": "moscow"},
                    {"not": {"field": "name", "op": "contains", "value": "3"}},
                ]
            },
        ]
    }
    segment = await ready.post(
        "/api/v1/segments", json={"name": "VIP or Moscow", "rules": rules}, headers=marketer(ready)
    )
    assert (await segment.json())["count"] == 2
    _, [template_id] = await people(sessions, 0)
    campaign_id = await create(ready, (await segment.json())["id"], template_id)
    await ready.post(f"/api/v1/campaigns/{campaign_id}/start", headers=marketer(ready))
    done = await until(ready, campaign_id, "finished")
    assert done["counts"]["recipients"] == 2
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == [
        "c0@client.example",
        "c1@client.example",
    ]


async def test_a_mailbox_with_three_connections_sends_on_all_three_each_message_once(
    hub_client: HubClient, sink: SmtpSink, sessions: SessionFactory, accounts: dict[Role, Any]
) -> None:
    client, _ = await hub_client(sink.port, connections=3)
    MARKETER_AUTH.clear()
    MARKETER_AUTH.update(accounts[Role.MARKETER].auth)
    segment_id, [template_id] = await people(sessions, 60)
    campaign_id = await create(client, segment_id, template_id)
    await client.post(f"/api/v1/campaigns/{campaign_id}/start", headers=marketer(client))
    done = await until(client, campaign_id, "finished")
    assert done["counts"]["sent"] == 60
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == sorted(
        f"p{n}@client.example" for n in range(60)
    )
    assert len({m.peer for m in sink.messages}) == 3


async def test_a_reply_counts_for_the_campaign_and_a_mailto_unsubscribe_withdraws_consent(
    ready: Client, sink: SmtpSink, sessions: SessionFactory
) -> None:
    segment_id, [template_id] = await people(sessions, 2)
    campaign_id = await create(ready, segment_id, template_id)
    await ready.post(f"/api/v1/campaigns/{campaign_id}/start", headers=marketer(ready))
    await until(ready, campaign_id, "finished")
    first, second = sorted((parsed(m.data) for m in sink.messages), key=lambda m: str(m["To"]))
    token = str(second["List-Unsubscribe"]).split("subject=unsubscribe%20")[1].rstrip(">")

    async def arrive(raw: bytes, uid: int) -> None:
        event = EmailArrived(
            source="news",
            folder="INBOX",
            uidvalidity=1,
            uid=uid,
            raw=raw,
            settled=asyncio.get_running_loop().create_future(),
        )
        async with sessions() as session:
            await file_email(
                session, event, OwnAddress("news", ADDRESS), region="RU", create_unknown=False
            )
            await session.commit()

    reply = (
        f"From: p0@client.example\r\nTo: {ADDRESS}\r\nSubject: Re: {first['Subject']}\r\n"
        f"Message-ID: <reply-1@client.example>\r\nIn-Reply-To: {first['Message-ID']}\r\n"
        "\r\nYes, interested!\r\n"
    )
    await arrive(reply.encode(), 1)
    mailto = (
        f"From: p1@client.example\r\nTo: {ADDRESS}\r\nSubject: unsubscribe {token}\r\n"
        "Message-ID: <unsub-1@client.example>\r\n\r\n\r\n"
    )
    await arrive(mailto.encode(), 2)

    done = await shown(ready, campaign_id)
    assert done["counts"]["replied"] == 1
    async with sessions() as session:
        [event] = (await session.scalars(select(ConsentEvent).where(~ConsentEvent.granted))).all()
    assert event.source == "unsubscribe e-mail"
    assert f"campaign {campaign_id}" in event.evidence


def feedback_report(original: EmailMessage) -> bytes:
    """A spam complaint as a mailbox provider's feedback loop sends it (RFC 5965 section 3)."""
    to = original["To"].addresses[0].addr_spec
    return (
        "From: <fbl@provider.example>\r\n"
        f"To: <{ADDRESS}>\r\n"
        "Subject: FW: complaint\r\n"
        "Message-ID: <fbl-1@provider.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="part"\r\n'
        "\r\n--part\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is an email abuse report for an email message received from IP 192.0.2.1\r\n"
        "\r\n--part\r\n"
        "Content-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\n"
        "User-Agent: SomeGenerator/1.0\r\n"
        "Version: 1\r\n"
        f"Original-Mail-From: <{ADDRESS}>\r\n"
        f"Original-Rcpt-To: <{to}>\r\n"
        "Arrival-Date: Thu, 8 Mar 2026 14:00:00 EDT\r\n"
        "\r\n--part\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"From: {original['From']}\r\n"
        f"To: <{to}>\r\n"
        f"Subject: {original['Subject']}\r\n"
        f"Message-ID: {original['Message-ID']}\r\n"
        "\r\n--part--\r\n"
    ).encode()


async def test_a_spam_complaint_counts_withdraws_consent_and_suppresses_the_address(
    ready: Client, sink: SmtpSink, sessions: SessionFactory
) -> None:
    segment_id, [template_id] = await people(sessions, 1)
    campaign_id = await create(ready, segment_id, template_id)
    await ready.post(f"/api/v1/campaigns/{campaign_id}/start", headers=marketer(ready))
    await until(ready, campaign_id, "finished")
    original = parsed(sink.messages[0].data)
    event = EmailArrived(
        source="news",
        folder="INBOX",
        uidvalidity=1,
        uid=1,
        raw=feedback_report(original),
        settled=asyncio.get_running_loop().create_future(),
    )
    async with sessions() as session:
        await file_email(
            session, event, OwnAddress("news", ADDRESS), region="RU", create_unknown=False
        )
        await session.commit()

    done = await shown(ready, campaign_id)
    assert done["counts"]["complained"] == 1
    async with sessions() as session:
        [withdrawn] = (
            await session.scalars(select(ConsentEvent).where(~ConsentEvent.granted))
        ).all()
        listed = await suppressions.suppressed(session, Medium.EMAIL, ["p0@client.example"])
    assert withdrawn.source == "complaint"
    assert "abuse" in withdrawn.evidence
    assert "p0@client.example" in listed

    again = await create(ready, segment_id, template_id)
    await ready.post(f"/api/v1/campaigns/{again}/start", headers=marketer(ready))
    second = await until(ready, again, "finished")
    assert second["counts"]["excluded"] == 1  # no more marketing to them
    assert len(sink.messages) == 1


async def test_a_draft_is_changed_until_it_starts_and_not_after(
    ready: Client, sink: SmtpSink, sessions: SessionFactory
) -> None:
    segment_id, [template_id] = await people(sessions, 1)
    campaign_id = await create(ready, segment_id, template_id)
    changed = await ready.patch(
        f"/api/v1/campaigns/{campaign_id}",
        json={
            "name": "Renamed",
            "channel": "email",
            "rate": 5,
            "window_from": 600,
            "window_to": 1080,
        },
        headers=marketer(ready),
    )
    assert changed.status == 200, await changed.text()
    assert (await changed.json())["name"] == "Renamed"
    bad = await ready.patch(
        f"/api/v1/campaigns/{campaign_id}", json={"window_to": 23 * 60}, headers=marketer(ready)
    )
    assert bad.status == 422
    await ready.post(f"/api/v1/campaigns/{campaign_id}/start", headers=marketer(ready))
    late = await ready.patch(
        f"/api/v1/campaigns/{campaign_id}", json={"name": "Too late"}, headers=marketer(ready)
    )
    assert late.status == 409


async def test_a_draft_naming_a_segment_or_template_that_does_not_exist_is_refused(
    ready: Client,
) -> None:
    for field in ("segment_id", "email_template_id", "sms_template_id"):
        response = await ready.post(
            "/api/v1/campaigns", json={"name": "Ghost", field: 999_999}, headers=marketer(ready)
        )
        assert response.status == 422, (field, await response.text())
        assert field in await response.text()
