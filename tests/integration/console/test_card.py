"""The client card in the console: what an operator sees and does on it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from app_fixtures import log_in
from commhub.models import Email, Interaction
from commhub.web.keys import DATABASE, SETTINGS

Client = TestClient[Any, Any]
HTML = {"Accept": "text/html"}


async def _contact(client: Client, headers: dict[str, str], **fields: Any) -> int:
    body = {"name": "Ivan Petrov", "phones": ["+79161234567"], "emails": ["ivan@client.example"]}
    body.update(fields)
    made = await client.post("/api/v1/contacts", json=body, headers=headers)
    assert made.status == 201, await made.text()
    return int((await made.json())["id"])


async def _interaction(
    client: Client, headers: dict[str, str], contact_id: int, n: int, **f: Any
) -> None:
    body = {
        "channel": "call",
        "direction": "in",
        "status": "answered",
        "external_id": f"test-{contact_id}-{n}",
        "occurred_at": f"2026-11-{1 + n // 24:02d}T{n % 24:02d}:00:00Z",
        "contact_id": contact_id,
        "duration_s": 125,
        "from_address": "+79161234567",
    }
    body.update(f)
    made = await client.post("/api/v1/interactions", json=body, headers=headers)
    assert made.status == 201, await made.text()


def _notice(text: str) -> str:
    found = re.search(r'<p class="notice[^"]*" role="status">([^<]*)</p>', text)
    return found.group(1) if found else ""


async def test_card_shows_the_contact_and_its_timeline(
    client: Client, operator: dict[str, str]
) -> None:
    contact_id = await _contact(client, operator, tags=["vip"])
    await _interaction(client, operator, contact_id, 1)
    await _interaction(
        client,
        operator,
        contact_id,
        2,
        channel="email",
        status="received",
        subject="Invoice 42",
        summary="Please find the invoice",
        from_address="ivan@client.example",
    )
    await log_in(client, "operator")
    page = await client.get(f"/contacts/{contact_id}")
    text = await page.text()
    assert page.status == 200
    assert '<h1 id="card-name">Ivan Petrov</h1>' in text
    assert "8 (916) 123-45-67" in text  # the hub's own country: national format
    assert "ivan@client.example" in text and "vip" in text
    assert "talked 2:05" in text and "Invoice 42" in text
    assert text.index("Invoice 42") < text.index("talked 2:05")  # newest first
    assert 'class="inline call-form"' in text  # operators may call


async def test_timeline_pages_load_until_the_end(client: Client, operator: dict[str, str]) -> None:
    contact_id = await _contact(client, operator)
    for n in range(30):
        await _interaction(client, operator, contact_id, n)
    await log_in(client, "operator")
    text = await (await client.get(f"/contacts/{contact_id}")).text()
    assert text.count("data-interaction=") == 25
    more = re.search(r'id="timeline-more" data-next="([^"]+)"', text)
    assert more is not None
    fragment = await client.get(more.group(1).replace("&amp;", "&"), headers=HTML)
    rest = await fragment.text()
    assert fragment.status == 200
    assert rest.count("data-interaction=") == 5
    assert 'id="timeline-done"' in rest and "timeline-more" not in rest
    seen = set(re.findall(r'data-interaction="(\d+)"', text + rest))
    assert len(seen) == 30
    bad = await client.get(f"/contacts/{contact_id}/timeline?cursor=nonsense", headers=HTML)
    assert bad.status == 422


async def test_note_with_follow_up_reaches_home_and_is_done_once(
    client: Client, operator: dict[str, str]
) -> None:
    contact_id = await _contact(client, operator)
    csrf = await log_in(client, "operator")
    saved = await client.post(
        f"/contacts/{contact_id}/notes",
        data={
            "csrf_token": csrf,
            "text": "Send the offer",
            "due_date": "2026-12-01",
            "due_time": "10:30",
            "key": "k1",
        },
    )
    page = await saved.text()
    assert _notice(page) == "Follow-up set."
    assert "Send the offer" in page and 'id="card-follow-ups"' in page
    again = await client.post(
        f"/contacts/{contact_id}/notes",
        data={"csrf_token": csrf, "text": "Send the offer", "due_date": "2026-12-01", "key": "k1"},
    )
    assert (await again.text()).count('data-channel="note"') == 1  # the same form twice: one note
    home = await (await client.get("/")).text()
    done = re.search(r'action="/follow-ups/(\d+)/done"', home)
    assert done is not None and "Send the offer" in home
    finished = await client.post(f"/follow-ups/{done.group(1)}/done", data={"csrf_token": csrf})
    assert "Follow-up done." in await finished.text()
    assert "Send the offer" not in await (await client.get("/")).text()


async def test_bad_input_is_refused_on_the_page_and_changes_nothing(
    client: Client, operator: dict[str, str]
) -> None:
    contact_id = await _contact(client, operator)
    csrf = await log_in(client, "operator")
    edited = await client.post(
        f"/contacts/{contact_id}/edit",
        data={"csrf_token": csrf, "name": "Renamed", "phones": "not a phone", "emails": ""},
    )
    text = await edited.text()
    assert _notice(text).startswith("Not done:")
    assert '<h1 id="card-name">Ivan Petrov</h1>' in text
    note = await client.post(
        f"/contacts/{contact_id}/notes", data={"csrf_token": csrf, "text": "x", "due_date": "31.12"}
    )
    assert "is not a date" in _notice(await note.text())
    sms = await client.post(f"/contacts/{contact_id}/sms", data={"csrf_token": csrf, "text": "Hi"})
    assert "no SMS gateway" in _notice(await sms.text())
    call = await client.post(
        "/calls",
        data={"csrf_token": csrf, "contact_id": str(contact_id), "number": "+79161234567"},
        headers={"Referer": str(client.make_url(f"/contacts/{contact_id}"))},
    )
    assert "no PBX is configured" in _notice(await call.text())
    forged = await client.post(f"/contacts/{contact_id}/notes", data={"text": "x"}, headers=HTML)
    assert forged.status == 403


async def test_edit_and_create_from_forms(client: Client, operator: dict[str, str]) -> None:
    contact_id = await _contact(client, operator)
    csrf = await log_in(client, "operator")
    edited = await client.post(
        f"/contacts/{contact_id}/edit",
        data={
            "csrf_token": csrf,
            "name": "Ivan P. Petrov",
            "company": "Acme",
            "phones": "+79161234567\n8 903 555 01 01",
            "emails": "ivan@client.example",
            "tags": "vip, lead",
        },
    )
    text = await edited.text()
    assert _notice(text) == "Contact saved."
    assert "Ivan P. Petrov" in text and "8 (903) 555-01-01" in text and "lead" in text
    made = await client.post(
        "/contacts/new", data={"csrf_token": csrf, "name": "Olga", "phones": "+7 (926) 000-11-22"}
    )
    assert _notice(await made.text()) == "Contact created."
    assert re.search(r"/contacts/\d+$", str(made.url))
    found = await (await client.get("/contacts", params={"phone": "89260001122"})).text()
    assert "Olga" in found and 'id="contacts"' in found


async def test_stored_text_is_shown_never_run(client: Client, operator: dict[str, str]) -> None:
    contact_id = await _contact(client, operator, name="<script>alert(1)</script>")
    await _interaction(client, operator, contact_id, 1, summary='"><img src=x onerror=alert(1)>')
    await log_in(client, "operator")
    page = await client.get(f"/contacts/{contact_id}")
    text = await page.text()
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<img src=x" not in text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


async def test_html_mail_is_shown_in_a_sandbox(client: Client, operator: dict[str, str]) -> None:
    contact_id = await _contact(client, operator)
    await _interaction(
        client,
        operator,
        contact_id,
        1,
        channel="email",
        status="received",
        external_id="<offer@client.example>",
        subject="Offer",
        from_address="ivan@client.example",
    )
    # Filing is the IMAP path's job (tested there); here the row is written as filing writes it.
    async with client.app[DATABASE]() as session:
        interaction_id = await session.scalar(
            select(Interaction.id).where(Interaction.external_id == "<offer@client.example>")
        )
        assert interaction_id is not None
        session.add(
            Email(
                interaction_id=interaction_id,
                mailbox="sales",
                message_id="<offer@client.example>",
                sender="ivan@client.example",
                text="Our offer",
                html='<p>Our offer</p><script>alert(1)</script><img src="https://tracker.example/p.gif">',
                raw=b"",
            )
        )
        await session.commit()
    await log_in(client, "operator")
    card = await (await client.get(f"/contacts/{contact_id}")).text()
    frame = f'sandbox title="Offer" loading="lazy" src="/emails/{interaction_id}/html">'
    assert f'<iframe class="mail" {frame}' in card
    framed = await client.get(f"/emails/{interaction_id}/html")
    assert framed.status == 200
    policy = framed.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox;") and "default-src 'none'" in policy
    assert "script-src" not in policy and "img-src data:" in policy
    none = await client.get(f"/emails/{interaction_id + 1000}/html", headers=HTML)
    assert none.status == 404


async def _filed_email(
    client: Client,
    headers: dict[str, str],
    contact_id: int,
    message_id: str,
    thread_id: int | None,
    **fields: Any,
) -> int:
    """An e-mail on the card as the IMAP filing path writes it (tested on its own);
    returns the thread's id."""
    body = {
        "channel": "email",
        "direction": "in",
        "status": "received",
        "external_id": message_id,
        "occurred_at": "2026-11-02T10:00:00Z",
        "contact_id": contact_id,
        "from_address": "ivan@client.example",
        "to_address": "sales@hub.example",
        "subject": "Offer",
        **fields,
    }
    made = await client.post("/api/v1/interactions", json=body, headers=headers)
    assert made.status == 201, await made.text()
    async with client.app[DATABASE]() as session:
        email = Email(
            interaction_id=int((await made.json())["id"]),
            mailbox="sales",
            message_id=message_id,
            sender=str(body["from_address"]),
            recipients={"to": [str(body["to_address"])]},
            text=f"Text of {message_id}",
            raw=b"",
            thread_id=thread_id,
        )
        session.add(email)
        await session.flush()
        if thread_id is None:
            email.thread_id = email.id
        thread = int(email.thread_id or 0)
        await session.commit()
    return thread


async def test_an_email_thread_reads_in_order_and_offers_a_reply(
    client: Client, operator: dict[str, str]
) -> None:
    contact_id = await _contact(client, operator)
    thread = await _filed_email(client, operator, contact_id, "<m1@client.example>", None)
    await _filed_email(
        client,
        operator,
        contact_id,
        "<m2@hub.example>",
        thread,
        direction="out",
        status="sent",
        occurred_at="2026-11-02T11:00:00Z",
        from_address="sales@hub.example",
        to_address="ivan@client.example",
        subject="Re: Offer",
    )
    csrf = await log_in(client, "operator")
    card = await (await client.get(f"/contacts/{contact_id}")).text()
    assert card.count(f'href="/emails/threads/{thread}"') == 2
    assert "thread of 2 messages" in card
    page = await client.get(f"/emails/threads/{thread}")
    text = await page.text()
    assert page.status == 200
    assert text.index("Text of &lt;m1@client.example&gt;") < text.index(
        "Text of &lt;m2@hub.example&gt;"
    )
    reply = re.search(r'name="reply_to_id" value="(\d+)"', text)
    assert reply is not None and 'name="to" value="ivan@client.example"' in text
    assert 'value="Re: Offer"' in text
    sent = await client.post(
        f"/contacts/{contact_id}/email",
        data={
            "csrf_token": csrf,
            "to": "ivan@client.example",
            "text": "Thanks",
            "reply_to_id": reply.group(1),
        },
        headers={"Referer": str(client.make_url(f"/emails/threads/{thread}"))},
    )
    assert str(sent.url).endswith(f"/emails/threads/{thread}")  # back where the reply was written
    assert "no mailbox is configured" in _notice(await sent.text())
    missing = await client.get(f"/emails/threads/{thread + 1000}", headers=HTML)
    assert missing.status == 404


async def test_recordings_link_where_the_pbx_serves_them(
    client: Client, operator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    contact_id = await _contact(client, operator)
    await _interaction(client, operator, contact_id, 1, recording_ref="2026/12/17953.1.wav")
    await log_in(client, "operator")
    plain = await (await client.get(f"/contacts/{contact_id}")).text()
    assert "<code>2026/12/17953.1.wav</code>" in plain
    monkeypatch.setattr(
        client.app[SETTINGS], "recordings_url", "https://pbx.example.com/monitor/{file}"
    )
    linked = await (await client.get(f"/contacts/{contact_id}")).text()
    assert 'href="https://pbx.example.com/monitor/17953.1.wav"' in linked


async def test_a_search_for_no_address_is_a_message_on_the_search_page(client: Client) -> None:
    await log_in(client, "operator")
    page = await client.get("/contacts", params={"email": "ivan@"}, headers=HTML)
    text = await page.text()
    assert page.status == 200
    assert 'class="notice notice-error" role="alert"' in text
    assert 'id="contact-search"' in text and 'value="ivan@"' in text
