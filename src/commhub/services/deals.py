"""Deals: open one, edit it, move it between stages; each in one transaction.

Every stage change writes the history row, rewrites the deal's funnel rows,
puts a line on the contact's timeline and, after the commit, tells the
owner on the live feed. :func:`enter_stage` is the one place that happens,
for a person's move, a mass change, a stage removed, a paid invoice or a
rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.deals import (
    MAX_LOST_REASON,
    MAX_NEXT_STEP,
    MAX_NOTES,
    DealSource,
    StageKind,
    read_text,
    read_title,
    shown_name,
)
from commhub.domain.interactions import Direction, Medium, NewInteraction, Status
from commhub.domain.money import read_amount, read_currency
from commhub.domain.roles import Permission, Role, allows
from commhub.models import Company, Contact, Deal, Pipeline, Stage, StageChange, User, utcnow
from commhub.services import live
from commhub.services.database import Database
from commhub.services.errors import Forbidden, InvalidInput, NotFound
from commhub.store import deals as store
from commhub.store import funnel as funnel_store
from commhub.store import interactions as interaction_store
from commhub.store import pipelines as pipeline_store


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: their id, and whether they may see and change every deal (managers)."""

    user_id: int | None
    sees_all: bool


SYSTEM = Actor(None, sees_all=True)
"""A rule or a job acting on its own."""


def actor(user_id: int, role: Role) -> Actor:
    """The person acting, with what their role lets them see."""
    return Actor(user_id, sees_all=allows(role, Permission.DEALS_ALL))


@dataclass(frozen=True, slots=True)
class DealDraft:
    title: str
    currency: str
    amount: Decimal | str = Decimal(0)
    contact_id: int | None = None
    company_id: int | None = None
    owner_id: int | None = None
    source: DealSource = DealSource.MANUAL
    pipeline_id: int | None = None
    stage_id: int | None = None
    expected_close_on: date | None = None
    next_step: str = ""
    next_step_due_on: date | None = None
    notes: str = ""
    origin_key: str | None = None


UNSET: Any = object()
"""A field a change leaves alone (``None`` clears a field that may be empty)."""


@dataclass(frozen=True, slots=True)
class DealChanges:
    title: str = UNSET
    amount: Decimal | str = UNSET
    currency: str = UNSET
    contact_id: int | None = UNSET
    company_id: int | None = UNSET
    owner_id: int | None = UNSET
    source: DealSource = UNSET
    expected_close_on: date | None = UNSET
    next_step: str = UNSET
    next_step_due_on: date | None = UNSET
    notes: str = UNSET
    lost_reason: str = UNSET

    def given(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in DealChanges.__slots__
            if getattr(self, name) is not UNSET
        }


@dataclass(frozen=True, slots=True)
class Moved:
    """A stage change, as the live feed tells the owner about it."""

    deal_id: int
    title: str
    contact_id: int | None
    owner_id: int | None
    from_stage: str | None
    to_stage: str
    kind: str

    def as_data(self) -> dict[str, Any]:
        return {
            "deal_id": self.deal_id,
            "title": self.title,
            "contact_id": self.contact_id,
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
            "kind": self.kind,
        }


@dataclass(slots=True)
class Moves:
    """Stage changes made in a transaction, told on the live feed once it commits."""

    done: list[Moved] = field(default_factory=list)

    def tell(self, feed: live.LiveFeed | None) -> None:
        if feed is None:
            return
        for moved in self.done:
            if moved.owner_id is not None:
                feed.publish(live.DEAL_MOVED, moved.as_data(), users=[moved.owner_id])


async def create_deal(
    db: Database, draft: DealDraft, actor: Actor, *, feed: live.LiveFeed | None = None
) -> Deal:
    """Open a deal in its pipeline's first open stage (or the stage named).

    With ``origin_key`` the same request twice opens one deal: the second
    answers with the first.
    """
    moves = Moves()
    async with db.begin() as session:
        if draft.origin_key is not None:
            found = await store.by_origin(session, draft.origin_key)
            if found is not None:
                await check_visible(session, found, actor)
                return found
        deal = await open_deal(session, draft, actor, moves)
    moves.tell(feed)
    return deal


async def open_deal(
    session: AsyncSession, draft: DealDraft, actor: Actor, moves: Moves | None = None
) -> Deal:
    """Write a new deal and its first history row inside the caller's transaction."""
    currency = read_currency(draft.currency)
    pipeline = await _pipeline(session, draft.pipeline_id)
    stage = await _first_stage(session, pipeline, draft.stage_id)
    owner_id = draft.owner_id if draft.owner_id is not None else actor.user_id
    await _check_owner(session, owner_id, actor)
    contact = await _contact(session, draft.contact_id)
    company_id = draft.company_id
    if company_id is None and contact is not None:
        company_id = contact.company_id
    elif company_id is not None:
        await _check_company(session, company_id)
    now = utcnow()
    deal = Deal(
        pipeline_id=pipeline.id,
        stage_id=stage.id,
        contact_id=draft.contact_id,
        company_id=company_id,
        title=read_title(draft.title),
        amount=read_amount(draft.amount, currency),
        currency=currency,
        owner_id=owner_id,
        source=draft.source.value,
        expected_close_on=draft.expected_close_on,
        next_step=read_text(draft.next_step, "next_step", MAX_NEXT_STEP),
        next_step_due_on=draft.next_step_due_on,
        notes=read_text(draft.notes, "notes", MAX_NOTES),
        origin_key=draft.origin_key,
        stage_entered_at=now,
        closed_at=now if StageKind(stage.kind).closes else None,
        created_by_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(deal)
    await session.flush()
    await _record_move(session, deal, None, stage, actor, now, moves)
    return deal


async def update_deal(db: Database, deal_id: int, changes: DealChanges, actor: Actor) -> Deal:
    """Change a deal's fields (not its stage: :func:`move_deal` does that)."""
    async with db.begin() as session:
        deal = await _deal(session, deal_id, actor)
        given = changes.given()
        currency = read_currency(given.get("currency", deal.currency))
        if "title" in given:
            deal.title = read_title(given["title"])
        if "amount" in given or "currency" in given:
            deal.amount = read_amount(given.get("amount", deal.amount), currency)
            deal.currency = currency
        if "owner_id" in given:
            await _check_owner(session, given["owner_id"], actor)
            deal.owner_id = given["owner_id"]
        if "contact_id" in given:
            await _contact(session, given["contact_id"])
            deal.contact_id = given["contact_id"]
        if "company_id" in given:
            if given["company_id"] is not None:
                await _check_company(session, given["company_id"])
            deal.company_id = given["company_id"]
        if "source" in given:
            deal.source = DealSource(given["source"]).value
        for name, limit in (
            ("next_step", MAX_NEXT_STEP),
            ("notes", MAX_NOTES),
            ("lost_reason", MAX_LOST_REASON),
        ):
            if name in given:
                setattr(deal, name, read_text(given[name], name, limit))
        for name in ("expected_close_on", "next_step_due_on"):
            if name in given:
                setattr(deal, name, given[name])
        deal.updated_at = utcnow()
        await session.flush()
        if {"owner_id", "amount", "currency", "source", "lost_reason"} & given.keys():
            await funnel_store.rewrite(session, [deal], await _lines(session, deal.pipeline_id))
    return deal


async def move_deal(
    db: Database,
    deal_id: int,
    stage_id: int,
    actor: Actor,
    *,
    lost_reason: str | None = None,
    feed: live.LiveFeed | None = None,
) -> Deal:
    """Move a deal to another stage of its pipeline; moving it where it stands does nothing."""
    moves = Moves()
    async with db.begin() as session:
        deal = await _deal(session, deal_id, actor)
        stage = await _stage_of(session, deal.pipeline_id, stage_id)
        if lost_reason is not None:
            deal.lost_reason = read_text(lost_reason, "lost_reason", MAX_LOST_REASON)
        moved = await enter_stage(session, deal, stage, actor, moves)
        if not moved and lost_reason is not None:
            # Already lost, with a new reason: the funnel counts the reason it has now.
            await funnel_store.rewrite(session, [deal], await _lines(session, deal.pipeline_id))
    moves.tell(feed)
    return deal


async def mass_change(
    db: Database,
    deal_ids: Sequence[int],
    actor: Actor,
    *,
    owner_id: int | None = UNSET,
    stage_id: int | None = UNSET,
    feed: live.LiveFeed | None = None,
) -> int:
    """Give the selected deals one owner and/or move them to one stage, all or none."""
    if not deal_ids:
        raise InvalidInput("ids", "select at least one deal")
    moves = Moves()
    async with db.begin() as session:
        deals = [await _deal(session, deal_id, actor) for deal_id in dict.fromkeys(deal_ids)]
        if owner_id is not UNSET:
            await _check_owner(session, owner_id, actor)
        for deal in deals:
            if owner_id is not UNSET and deal.owner_id != owner_id:
                deal.owner_id = owner_id
                deal.updated_at = utcnow()
                await funnel_store.rewrite(session, [deal], await _lines(session, deal.pipeline_id))
            if stage_id is not UNSET and stage_id is not None:
                stage = await _stage_of(session, deal.pipeline_id, stage_id)
                await enter_stage(session, deal, stage, actor, moves)
    moves.tell(feed)
    return len(deals)


async def enter_stage(
    session: AsyncSession,
    deal: Deal,
    stage: Stage,
    actor: Actor,
    moves: Moves | None = None,
    *,
    at: datetime | None = None,
) -> bool:
    """Put ``deal`` in ``stage`` with its history row, funnel rows and timeline line;
    ``False`` (nothing written) when it already stands there."""
    if deal.stage_id == stage.id:
        return False
    now = at or utcnow()
    previous = await session.get(Stage, deal.stage_id)
    deal.stage_id = stage.id
    deal.stage_entered_at = now
    deal.closed_at = now if StageKind(stage.kind).closes else None
    deal.updated_at = now
    await session.flush()
    await _record_move(session, deal, previous, stage, actor, now, moves)
    return True


async def _record_move(
    session: AsyncSession,
    deal: Deal,
    previous: Stage | None,
    stage: Stage,
    actor: Actor,
    at: datetime,
    moves: Moves | None,
) -> None:
    change = StageChange(
        deal_id=deal.id,
        from_stage_id=None if previous is None else previous.id,
        to_stage_id=stage.id,
        changed_at=at,
        changed_by_id=actor.user_id,
    )
    session.add(change)
    await session.flush()
    await funnel_store.rewrite(session, [deal], await _lines(session, deal.pipeline_id))
    moved = Moved(
        deal_id=deal.id,
        title=deal.title,
        contact_id=deal.contact_id,
        owner_id=deal.owner_id,
        from_stage=None if previous is None else shown_name(previous.name, previous.preset),
        to_stage=shown_name(stage.name, stage.preset),
        kind=stage.kind,
    )
    if deal.contact_id is not None:
        await interaction_store.record(
            session,
            NewInteraction(
                channel=Medium.DEAL,
                direction=Direction.INTERNAL,
                status=Status.LOGGED,
                external_id=f"deal:{deal.id}:{change.id}",
                occurred_at=at,
                contact_id=deal.contact_id,
                operator_id=actor.user_id,
                subject=deal.title,
                summary=(
                    f"{moved.from_stage} → {moved.to_stage}" if moved.from_stage else moved.to_stage
                ),
                extra={
                    "deal_id": deal.id,
                    "from_stage_id": change.from_stage_id,
                    "to_stage_id": stage.id,
                    "kind": stage.kind,
                },
            ),
        )
    if moves is not None:
        moves.done.append(moved)


async def _lines(session: AsyncSession, pipeline_id: int) -> list[Any]:
    return pipeline_store.lines(await pipeline_store.stages_of(session, pipeline_id, removed=True))


async def _deal(session: AsyncSession, deal_id: int, actor: Actor) -> Deal:
    deal = await session.get(Deal, deal_id)
    if deal is None:
        raise NotFound("deal", deal_id)
    await check_visible(session, deal, actor)
    return deal


async def check_visible(session: AsyncSession, deal: Deal, actor: Actor) -> None:
    """An operator works on their own deals and on deals of contacts they own."""
    if actor.sees_all or deal.owner_id == actor.user_id:
        return
    if deal.contact_id is not None:
        contact = await session.get(Contact, deal.contact_id)
        if contact is not None and contact.owner_id == actor.user_id:
            return
    raise Forbidden("id", f"deal {deal.id} belongs to someone else")


async def _check_owner(session: AsyncSession, owner_id: int | None, actor: Actor) -> None:
    if owner_id is None:
        if not actor.sees_all:
            raise Forbidden("owner_id", "only a manager may leave a deal without an owner")
        return
    if not actor.sees_all and owner_id != actor.user_id:
        raise Forbidden("owner_id", "an operator may only own deals themselves")
    user = await session.get(User, owner_id)
    if user is None or not user.active:
        raise InvalidInput("owner_id", f"no active user {owner_id}")


async def _contact(session: AsyncSession, contact_id: int | None) -> Contact | None:
    if contact_id is None:
        return None
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise InvalidInput("contact_id", f"no contact {contact_id}")
    if contact.merged_into_id is not None:
        raise InvalidInput(
            "contact_id", f"contact {contact_id} was merged into {contact.merged_into_id}"
        )
    return contact


async def _check_company(session: AsyncSession, company_id: int) -> None:
    if await session.get(Company, company_id) is None:
        raise InvalidInput("company_id", f"no company {company_id}")


async def _pipeline(session: AsyncSession, pipeline_id: int | None) -> Pipeline:
    found = await pipeline_store.chosen_or_default(session, pipeline_id)
    if found is None:
        if pipeline_id is None:
            raise InvalidInput("pipeline_id", "no pipeline is set up: an admin must add one")
        raise InvalidInput("pipeline_id", f"no pipeline {pipeline_id}")
    return found


async def _first_stage(session: AsyncSession, pipeline: Pipeline, stage_id: int | None) -> Stage:
    if stage_id is not None:
        return await _stage_of(session, pipeline.id, stage_id)
    for stage in await pipeline_store.stages_of(session, pipeline.id):
        if stage.kind == StageKind.OPEN.value:
            return stage
    raise InvalidInput("pipeline_id", f"pipeline {pipeline.id} has no open stage")


async def _stage_of(session: AsyncSession, pipeline_id: int, stage_id: int) -> Stage:
    stage = await session.get(Stage, stage_id)
    if stage is None or stage.removed_at is not None:
        raise InvalidInput("stage_id", f"no stage {stage_id}")
    if stage.pipeline_id != pipeline_id:
        raise InvalidInput("stage_id", f"stage {stage_id} is not in pipeline {pipeline_id}")
    return stage
