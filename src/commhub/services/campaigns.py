"""Campaigns as a marketer sets them up and runs them: create, edit, start, pause, resume, cancel.

Starting freezes nothing by itself: it moves the campaign to ``starting``
(or ``scheduled``) and the templates as they are now are copied into it,
so an edit afterwards changes nothing under way. The freeze of the
recipient list and the writing of messages are jobs (``campaign_jobs``);
the keeper (``campaign_keeper``) hands them out and finishes what is done.
Every move goes through :func:`_move`, one conditional ``UPDATE`` on the
state it was read in: a person's pause and the keeper's finish can never
overwrite each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.campaigns import (
    EDITABLE,
    CampaignChannel,
    CampaignError,
    CampaignState,
    Schedule,
    Window,
    check_move,
)
from commhub.domain.consent import Purpose
from commhub.domain.interactions import Status
from commhub.domain.moments import MomentError, checked_moment
from commhub.models import Campaign, Interaction, MessageTemplate, Outbox, Segment, utcnow
from commhub.services.database import Database
from commhub.services.errors import Conflict, InvalidInput, NotFound
from commhub.store import campaign_results as results
from commhub.store.campaign_rows import CANCELLED


@dataclass(frozen=True, slots=True)
class Senders:
    """The channels a campaign may send through on this hub, by name."""

    mailboxes: Mapping[str, tuple[str, str]]
    """Name → (address, display name): the From a worker writes, having no channels."""
    sms_gateways: Mapping[str, tuple[str, ...]]
    """Name → its numbers, the first being its default sender."""


RECIPIENT_STATES = ("pending", "excluded", *results.OUTBOX_STATES)
"""What a recipient's row may say: still on the list, left out, or its message's state."""

NOT_NULL = ("name", "channel", "purpose", "schedule", "bounce_limit", "complaint_limit")
"""Draft fields an edit may change but not clear."""


@dataclass(frozen=True, slots=True)
class CampaignDraft:
    """What a marketer sets; every field but ``name`` may be left for later, until the start."""

    name: str
    channel: CampaignChannel = CampaignChannel.EMAIL
    purpose: Purpose = Purpose.MARKETING
    segment_id: int | None = None
    email_template_id: int | None = None
    sms_template_id: int | None = None
    mailbox: str | None = None
    sms_gateway: str | None = None
    sms_sender: str | None = None
    schedule: Schedule = Schedule.NOW
    start_at: datetime | None = None
    window_from: int | None = None
    window_to: int | None = None
    rate: float | None = None
    bounce_limit: float = 5.0
    complaint_limit: float = 0.1


async def create(db: Database, draft: CampaignDraft, *, user_id: int | None) -> Campaign:
    """Save a new draft; commits."""
    _check_draft(draft)
    async with db() as session:
        await _check_chosen(session, draft)
        campaign = Campaign(**_columns(draft), state=CampaignState.DRAFT.value)
        campaign.created_by_id = user_id
        session.add(campaign)
        await session.commit()
        return campaign


async def update_draft(db: Database, campaign_id: int, changes: dict[str, Any]) -> Campaign:
    """Change a draft or scheduled campaign; commits. ``changes`` holds draft field names."""
    async with db() as session:
        campaign = await _get(session, campaign_id)
        if campaign.state not in EDITABLE:
            raise Conflict("state", f"a {campaign.state} campaign can no longer be changed")
        for name in NOT_NULL:
            if name in changes and changes[name] is None:
                raise InvalidInput(name, "give a value (it cannot be null)")
        current = {f.name: getattr(campaign, f.name) for f in fields(CampaignDraft)}
        current.update(changes)
        draft = CampaignDraft(**current)
        _check_draft(draft)
        await _check_chosen(session, draft)
        for name, value in _columns(draft).items():
            setattr(campaign, name, value)
        await session.commit()
        return campaign


async def get(db: Database, campaign_id: int) -> Campaign:
    async with db() as session:
        return await _get(session, campaign_id)


async def listing(db: Database, *, limit: int = 100) -> list[Campaign]:
    async with db() as session:
        rows = await session.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(limit))
        return list(rows)


@dataclass(frozen=True, slots=True)
class Listed:
    """A campaign as the console's list shows it."""

    campaign: Campaign
    segment: str | None
    sent: int


async def console_listing(db: Database, *, state: str | None, limit: int = 200) -> list[Listed]:
    """Campaigns newest first (only those in ``state`` if given), with segment names and sends."""
    async with db() as session:
        query = select(Campaign).order_by(Campaign.id.desc()).limit(limit)
        if state is not None:
            query = query.where(Campaign.state == state)
        rows = list(await session.scalars(query))
        segment_ids = {r.segment_id for r in rows if r.segment_id is not None}
        names: dict[int, str] = {}
        if segment_ids:
            found = await session.execute(
                select(Segment.id, Segment.name).where(Segment.id.in_(segment_ids))
            )
            names = {int(ident): str(name) for ident, name in found}
        sent = await results.sent_by_campaign(session, [r.id for r in rows])
        return [
            Listed(
                r, names.get(r.segment_id) if r.segment_id is not None else None, sent.get(r.id, 0)
            )
            for r in rows
        ]


async def start(
    db: Database, campaign_id: int, senders: Senders, *, public_url: str = ""
) -> Campaign:
    """Check everything it needs and start it (or schedule it); commits.

    The templates are copied into the campaign now, with ``public_url``, the
    address its unsubscribe links point at. Raises :class:`InvalidInput`
    naming what is missing or wrong.
    """
    async with db() as session:
        campaign = await _get(session, campaign_id)
        if campaign.state not in EDITABLE:
            raise Conflict("state", f"a {campaign.state} campaign cannot be started")
        await _check_ready(session, campaign, senders)
        campaign.content = {
            **await _content(session, campaign),
            **_sender(campaign, senders),
            "public_url": public_url,
        }
        scheduled = campaign.schedule == Schedule.AT.value and (
            campaign.start_at is not None and campaign.start_at > utcnow()
        )
        wanted = CampaignState.SCHEDULED if scheduled else CampaignState.STARTING
        if campaign.state != wanted.value:
            check_move(campaign.state, wanted)
            campaign.state = wanted.value
        campaign.state_reason = ""
        await session.commit()
        return campaign


async def pause(db: Database, campaign_id: int, *, reason: str = "") -> Campaign:
    """Stop taking its messages; those already handed over finish. Commits."""
    return await _move(db, campaign_id, CampaignState.PAUSED, reason=reason)


async def resume(db: Database, campaign_id: int) -> Campaign:
    return await _move(db, campaign_id, CampaignState.RUNNING)


async def cancel(db: Database, campaign_id: int) -> Campaign:
    """Stop for good: every message not yet handed over is cancelled, on its card too."""
    campaign = await _move(db, campaign_id, CampaignState.CANCELLED)
    async with db() as session:
        await cancel_unsent(session, campaign_id)
        await session.commit()
    return campaign


async def cancel_unsent(session: AsyncSession, campaign_id: int) -> None:
    """Queued messages of a stopped campaign become ``cancelled``, on the card too. No commit."""
    stopped = list(
        await session.scalars(
            update(Outbox)
            .where(Outbox.campaign_id == campaign_id, Outbox.state == "queued")
            .values(state=CANCELLED, next_attempt_at=None)
            .returning(Outbox.interaction_id)
        )
    )
    for start in range(0, len(stopped), 500):
        await session.execute(
            update(Interaction)
            .where(Interaction.id.in_(stopped[start : start + 500]))
            .values(status=Status.CANCELLED.value)
        )


async def _move(
    db: Database, campaign_id: int, wanted: CampaignState, *, reason: str = ""
) -> Campaign:
    async with db() as session:
        campaign = await _get(session, campaign_id)
        try:
            check_move(campaign.state, wanted)
        except CampaignError as exc:
            raise Conflict(exc.field, exc.reason) from None
        moved = await session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.state == campaign.state)
            .values(
                state=wanted.value,
                state_reason=reason,
                finished_at=utcnow() if wanted is CampaignState.CANCELLED else None,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if not getattr(moved, "rowcount", 0):
            raise Conflict("state", "the campaign changed meanwhile; look again")
        await session.commit()
        return await _get(session, campaign_id)


async def _get(session: AsyncSession, campaign_id: int) -> Campaign:
    campaign = await session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None:
        raise NotFound("campaign", campaign_id)
    return campaign


def _columns(draft: CampaignDraft) -> dict[str, Any]:
    values = {f.name: getattr(draft, f.name) for f in fields(CampaignDraft)}
    values["channel"] = CampaignChannel(draft.channel).value
    values["purpose"] = Purpose(draft.purpose).value
    values["schedule"] = Schedule(draft.schedule).value
    values["name"] = draft.name.strip()
    return values


def _check_draft(draft: CampaignDraft) -> None:
    if not draft.name.strip():
        raise InvalidInput("name", "give the campaign a name")
    if len(draft.name) > 200:
        raise InvalidInput("name", "at most 200 characters")
    try:
        Window.of(draft.window_from, draft.window_to)
    except CampaignError as exc:
        raise InvalidInput("window_from", exc.reason) from None
    if draft.rate is not None and not 0 < draft.rate <= 1000:
        raise InvalidInput("rate", "messages per second: more than 0, at most 1000")
    for name in ("bounce_limit", "complaint_limit"):
        if not 0 <= getattr(draft, name) <= 100:
            raise InvalidInput(name, "a percentage between 0 and 100")
    if draft.start_at is not None:
        try:
            checked_moment(draft.start_at)
        except MomentError as exc:
            raise InvalidInput("start_at", str(exc)) from None


async def _check_chosen(session: AsyncSession, draft: CampaignDraft) -> None:
    """The segment and templates a draft names exist (else 422 naming the field, not a 500)."""
    for field, model, ident in (
        ("segment_id", Segment, draft.segment_id),
        ("email_template_id", MessageTemplate, draft.email_template_id),
        ("sms_template_id", MessageTemplate, draft.sms_template_id),
    ):
        if ident is not None and await session.get(model, ident) is None:
            raise InvalidInput(
                field, f"there is no {field.removesuffix('_id').replace('_', ' ')} {ident}"
            )


async def _check_ready(session: AsyncSession, campaign: Campaign, senders: Senders) -> None:
    """Everything a start needs is there, or the first thing missing is named."""
    segment = (
        await session.get(Segment, campaign.segment_id) if campaign.segment_id is not None else None
    )
    if segment is None or segment.removed_at is not None:
        raise InvalidInput("segment_id", "choose the segment it goes to")
    if campaign.schedule == Schedule.AT.value and campaign.start_at is None:
        raise InvalidInput("start_at", "give the time it starts at")
    channel = CampaignChannel(campaign.channel)
    if channel in (CampaignChannel.EMAIL, CampaignChannel.BOTH):
        await _check_template(session, campaign.email_template_id, "email", "email_template_id")
        if campaign.mailbox not in senders.mailboxes:
            raise InvalidInput("mailbox", "choose a mailbox this hub sends from")
    if channel in (CampaignChannel.SMS, CampaignChannel.BOTH):
        await _check_template(session, campaign.sms_template_id, "sms", "sms_template_id")
        gateway = campaign.sms_gateway
        if gateway is None or gateway not in senders.sms_gateways:
            raise InvalidInput("sms_gateway", "choose an SMS gateway this hub sends through")
        numbers = senders.sms_gateways[gateway]
        if campaign.sms_sender and campaign.sms_sender not in numbers:
            raise InvalidInput(
                "sms_sender",
                f"{gateway} sends from {', '.join(numbers) or 'no number set up'}",
            )


async def _check_template(
    session: AsyncSession, template_id: int | None, channel: str, field: str
) -> None:
    template = await session.get(MessageTemplate, template_id) if template_id is not None else None
    if template is None or template.removed_at is not None:
        raise InvalidInput(field, f"choose the {channel} template it sends")
    if template.channel != channel:
        raise InvalidInput(field, f"template {template.id} is not an {channel} template")


def _sender(campaign: Campaign, senders: Senders) -> dict[str, Any]:
    """Who it is from, as the channels say now: the workers that write it have no channels."""
    found: dict[str, Any] = {}
    if campaign.mailbox is not None and campaign.mailbox in senders.mailboxes:
        address, name = senders.mailboxes[campaign.mailbox]
        found["from"] = {"address": address, "name": name}
    if campaign.sms_gateway is not None and campaign.sms_gateway in senders.sms_gateways:
        numbers = senders.sms_gateways[campaign.sms_gateway]
        found["sms_from"] = campaign.sms_sender or (numbers[0] if numbers else "")
    return found


async def _content(session: AsyncSession, campaign: Campaign) -> dict[str, Any]:
    """The templates as they are now: what the campaign sends, whatever happens to them later."""
    content: dict[str, Any] = {}
    for key, template_id in (
        ("email", campaign.email_template_id),
        ("sms", campaign.sms_template_id),
    ):
        template = await session.get(MessageTemplate, template_id) if template_id else None
        if template is not None and campaign.channel in (key, CampaignChannel.BOTH.value):
            content[key] = {
                "template_id": template.id,
                "subject": template.subject,
                "text": template.text,
                "html": template.html,
                "language": template.language,
            }
    return content


@dataclass(frozen=True, slots=True)
class Progress:
    campaign: Campaign
    counts: dict[str, int]


async def progress(db: Database, campaign_id: int) -> Progress:
    """The campaign and what became of its messages so far."""
    async with db() as session:
        campaign = await _get(session, campaign_id)
        return Progress(campaign, await results.counts(session, campaign_id))


async def recipients(
    db: Database, campaign_id: int, *, state: str | None, after: int, limit: int
) -> list[Any]:
    """One page of the per-recipient list, with each message's outcome and reason."""
    async with db() as session:
        await _get(session, campaign_id)
        return list(
            await results.recipients(session, campaign_id, state=state, after=after, limit=limit)
        )


@dataclass(frozen=True, slots=True)
class Watch:
    """What the console's campaign page shows and refreshes while it runs."""

    campaign: Campaign
    segment: str | None
    counts: dict[str, int]
    excluded: dict[str, int]
    """Recipients left out, by reason."""
    retrying: int
    """Messages waiting for another try after a temporary refusal (soft bounces)."""
    per_minute: list[tuple[datetime, int]]


async def watch(db: Database, campaign_id: int, *, minutes: int = 30) -> Watch:
    """The campaign, its counts, why people were left out, and its last minutes of sending."""
    async with db() as session:
        campaign = await _get(session, campaign_id)
        segment = await session.get(Segment, campaign.segment_id) if campaign.segment_id else None
        return Watch(
            campaign=campaign,
            segment=segment.name if segment is not None else None,
            counts=await results.counts(session, campaign_id),
            excluded=await results.exclusions(session, campaign_id),
            retrying=await results.retrying(session, campaign_id),
            per_minute=await results.sent_per_minute(session, campaign_id, minutes=minutes),
        )
