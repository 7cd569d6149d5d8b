"""Message templates as marketers write them: saved, checked, previewed with real or made-up people.

A template is checked when it is saved (a syntax error names its line), so
a campaign never starts with one that cannot compile; what a template does
with one person's values is seen in the preview, and a campaign's fill
leaves out, with the reason, a person it cannot be written for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import Mailbox, SmsGateway
from commhub.domain.email_compose import Recipient
from commhub.domain.sms_text import SmsShape, SmsTextError, measure
from commhub.domain.template_render import Compiled, RenderError, check_source, compiled
from commhub.domain.virtual_client import virtual_client
from commhub.models import MessageTemplate, Outbox, Segment, utcnow
from commhub.services.database import Database
from commhub.services.email_sending import EmailRequest, queue_email
from commhub.services.errors import InvalidInput, NotFound
from commhub.services.sms_sending import SmsRequest, queue_sms
from commhub.store import segments as segment_store
from commhub.store.template_values import values_for

CHANNELS: Final = ("email", "sms")
MAX_TEXT: Final = 200_000


@dataclass(frozen=True, slots=True)
class TemplateDraft:
    name: str
    channel: str
    language: str = ""
    subject: str = ""
    text: str = ""
    html: str | None = None


@dataclass(frozen=True, slots=True)
class Preview:
    subject: str
    text: str
    html: str | None
    sms: SmsShape | None
    """Encoding and segments of the text, for an SMS template."""
    missing: list[str]
    """Variables the template used that these values lack (written empty)."""


@dataclass(frozen=True, slots=True)
class Gaps:
    """Who, among a segment's first members, would get the template with something empty."""

    scanned: int
    members: int
    people: list[tuple[int, str, list[str]]]
    """(contact id, name, the variables missing for them), the first ``limit`` found."""
    count: int
    """How many of those scanned lack something."""


MISSING_SCAN: Final = 5000
"""Members looked at for missing values: enough to see a pattern, bounded in time."""


async def create(db: Database, draft: TemplateDraft, *, user_id: int | None) -> MessageTemplate:
    _check(draft)
    async with db() as session:
        row = MessageTemplate(**_columns(draft), created_by_id=user_id)
        session.add(row)
        await session.commit()
        return row


async def update(db: Database, template_id: int, changes: dict[str, Any]) -> MessageTemplate:
    async with db() as session:
        row = await _get(session, template_id)
        _no_nulls(changes, ("name", "language", "subject", "text"))
        current = {f.name: getattr(row, f.name) for f in fields(TemplateDraft)}
        current.update(changes)
        draft = TemplateDraft(**current)
        _check(draft)
        for name, value in _columns(draft).items():
            setattr(row, name, value)
        await session.commit()
        return row


async def remove(db: Database, template_id: int) -> None:
    """Set aside: campaigns that used it keep their copy."""
    async with db() as session:
        row = await _get(session, template_id)
        row.removed_at = utcnow()
        await session.commit()


async def get(db: Database, template_id: int) -> MessageTemplate:
    async with db() as session:
        return await _get(session, template_id)


async def listing(db: Database, *, channel: str | None = None) -> list[MessageTemplate]:
    async with db() as session:
        query = select(MessageTemplate).where(MessageTemplate.removed_at.is_(None))
        if channel is not None:
            query = query.where(MessageTemplate.channel == channel)
        return list(await session.scalars(query.order_by(MessageTemplate.name, MessageTemplate.id)))


async def preview(
    db: Database,
    draft: TemplateDraft,
    *,
    contact_id: int | None,
    public_url: str,
    virtual: bool = False,
) -> Preview:
    """The template written for one contact, the made-up client, or empty values.

    :class:`InvalidInput` says what fails and where.
    """
    _check(draft)
    if virtual:
        values = virtual_client(draft.language)
    else:
        async with db() as session:
            values = await _values(session, contact_id, draft.language or "en")
    values["unsubscribe_url"] = f"{public_url.rstrip('/')}/u/preview"
    parts = _parts(draft)
    try:
        shown = {name: part.render(values) for name, part in parts.items()}
    except RenderError as exc:
        raise InvalidInput("text", str(exc)) from None
    text = shown["text"].text
    missing = sorted(set().union(*(r.missing for r in shown.values())))
    return Preview(
        subject=shown["subject"].text if "subject" in shown else "",
        text=text,
        html=shown["html"].text if "html" in shown else None,
        sms=measure(text) if draft.channel == "sms" and text else None,
        missing=missing,
    )


async def gaps(db: Database, draft: TemplateDraft, segment_id: int, *, limit: int = 50) -> Gaps:
    """Members of a segment for whom the template would leave a variable empty."""
    _check(draft)
    parts = _parts(draft)
    people: list[tuple[int, str, list[str]]] = []
    count = scanned = 0
    async with db() as session:
        segment = await session.get(Segment, segment_id)
        if segment is None or segment.removed_at is not None:
            raise NotFound("segment", segment_id)
        chosen = segment_store.of_segment(segment)
        members = await segment_store.count(session, chosen)
        ids = list(await session.scalars(chosen.order_by(None).limit(MISSING_SCAN)))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            known = await values_for(session, chunk, locale=draft.language or "en")
            for contact_id in chunk:
                values = {**known.get(contact_id, {}), "unsubscribe_url": "-"}
                scanned += 1
                try:
                    missing = set().union(*(p.render(values).missing for p in parts.values()))
                except RenderError:
                    continue  # the preview says why; this is about empty values
                if missing:
                    count += 1
                    if len(people) < limit:
                        name = str(values.get("contact", {}).get("name", ""))
                        people.append((contact_id, name, sorted(missing)))
    return Gaps(scanned=scanned, members=members, people=people, count=count)


def _parts(draft: TemplateDraft) -> dict[str, Compiled]:
    found = {"text": compiled(draft.text)}
    if draft.subject:
        found["subject"] = compiled(draft.subject)
    if draft.html:
        found["html"] = compiled(draft.html, html=True)
    return found


async def _values(session: AsyncSession, contact_id: int | None, locale: str) -> dict[str, Any]:
    if contact_id is None:
        return {"contact": {}, "company": {}, "owner": {}, "deal": {}}
    found = await values_for(session, [contact_id], locale=locale)
    if contact_id not in found:
        raise NotFound("contact", contact_id)
    return found[contact_id]


async def _get(session: AsyncSession, template_id: int) -> MessageTemplate:
    row = await session.get(MessageTemplate, template_id)
    if row is None or row.removed_at is not None:
        raise NotFound("template", template_id)
    return row


def _columns(draft: TemplateDraft) -> dict[str, Any]:
    return {f.name: getattr(draft, f.name) for f in fields(TemplateDraft)} | {
        "name": draft.name.strip()
    }


def _no_nulls(changes: dict[str, Any], names: Sequence[str]) -> None:
    for name in names:
        if name in changes and changes[name] is None:
            raise InvalidInput(name, "give a value (it cannot be null)")


def _check(draft: TemplateDraft) -> None:
    if not draft.name.strip():
        raise InvalidInput("name", "give the template a name")
    if draft.channel not in CHANNELS:
        raise InvalidInput("channel", "email or sms")
    if not draft.text.strip():
        raise InvalidInput("text", "write the message")
    if draft.channel == "email" and not draft.subject.strip():
        raise InvalidInput("subject", "an e-mail needs a subject")
    if draft.channel == "sms" and (draft.subject or draft.html):
        raise InvalidInput("channel", "an SMS has neither a subject nor HTML")
    for name in ("subject", "text", "html"):
        source = getattr(draft, name)
        if source is None:
            continue
        if len(source) > MAX_TEXT:
            raise InvalidInput(name, f"at most {MAX_TEXT:,} characters")
        try:
            check_source(source, html=name == "html")
        except RenderError as exc:
            raise InvalidInput(name, str(exc)) from None


async def send_test(
    db: Database,
    draft: TemplateDraft,
    *,
    to: str,
    contact_id: int | None,
    mailer: Mailbox | None,
    gateways: Sequence[SmsGateway],
    user_id: int | None,
    region: str,
    public_url: str,
) -> Outbox:
    """Send the template, written for ``contact_id`` (or empty values), to ``to``: a test.

    It goes as any message does (the outbox, the channel's dispatcher), marked
    "[test]", and is filed by the address it went to, never to the contact
    whose values it was written with.
    """
    shown = await preview(db, draft, contact_id=contact_id, public_url=public_url)
    extra = {"kind": "template test", "template": draft.name}
    if draft.channel == "email":
        if mailer is None:
            raise InvalidInput("mailbox", "no mailbox is configured to send the test from")
        request = EmailRequest(
            to=(Recipient(to),),
            subject=f"[test] {shown.subject}",
            text=shown.text,
            html=shown.html,
            extra=extra,
        )
        async with db() as session:
            row, _ = await queue_email(session, mailer, request, user_id=user_id, region=region)
        return row
    sms = SmsRequest(text=f"[test] {shown.text}", to=to, extra=extra)
    async with db() as session:
        try:
            row, _ = await queue_sms(session, gateways, sms, user_id=user_id, region=region)
        except SmsTextError as exc:
            raise InvalidInput("text", str(exc)) from None
    return row
