"""What each deal page of the console reads, in one call per page.

A page needs the deals and what its forms offer (pipelines with their
stages, the people a deal may be given to); these put the two together so
a handler calls one function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from commhub.models import Pipeline, Stage
from commhub.services import cards, deal_views
from commhub.services.database import Database
from commhub.services.deal_views import Board, DealList, DealPage, Names
from commhub.services.deals import Actor
from commhub.services.errors import InvalidInput
from commhub.store import contacts as contact_store
from commhub.store import pipelines as pipeline_store
from commhub.store import users as user_store
from commhub.store.deals import OUTCOMES, SORTS, Column, DealFilter, Reached

__all__ = ["OUTCOMES", "SORTS", "DealFilter", "Reached"]


@dataclass(frozen=True, slots=True)
class Choices:
    """What the deal forms offer: pipelines with their stages, and active people."""

    pipelines: Sequence[tuple[Pipeline, Sequence[Stage]]]
    users: dict[int, str]


@dataclass(frozen=True, slots=True)
class ListScreen:
    found: DealList
    choices: Choices


@dataclass(frozen=True, slots=True)
class BoardScreen:
    board: Board
    choices: Choices


@dataclass(frozen=True, slots=True)
class DealScreen:
    page: DealPage
    timeline: cards.Timeline | None
    """The contact's timeline on every channel (``None`` for a deal without a contact)."""
    choices: Choices


@dataclass(frozen=True, slots=True)
class NewDealScreen:
    contact_id: int | None
    contact_name: str
    choices: Choices


async def choices(db: Database) -> Choices:
    async with db() as session:
        pipelines = [
            (p, await pipeline_store.stages_of(session, p.id))
            for p in await pipeline_store.all_pipelines(session)
        ]
        users = {u.id: u.shown_name for u in await user_store.all_users(session) if u.active}
    return Choices(pipelines, users)


async def list_screen(
    db: Database,
    which: DealFilter,
    actor: Actor,
    *,
    sort: str,
    descending: bool,
    offset: int,
    limit: int,
) -> ListScreen:
    found = await deal_views.deal_list(
        db, which, actor, sort=sort, descending=descending, offset=offset, limit=limit
    )
    return ListScreen(found, await choices(db))


async def board_screen(
    db: Database, pipeline_id: int | None, actor: Actor, *, limit: int
) -> BoardScreen:
    return BoardScreen(
        await deal_views.board(db, pipeline_id, DealFilter(), actor, limit=limit),
        await choices(db),
    )


async def more_cards(
    db: Database, stage_id: int, actor: Actor, *, after: tuple[datetime, int], limit: int
) -> tuple[Column, Names]:
    return await deal_views.board_column(
        db, stage_id, DealFilter(), actor, after=after, limit=limit
    )


async def deal_screen(db: Database, deal_id: int, actor: Actor, *, timeline: int) -> DealScreen:
    page = await deal_views.deal_page(db, deal_id, actor)
    rows = None
    if page.deal.contact_id is not None:
        rows = (
            await cards.timeline_page(db, page.deal.contact_id, after=None, limit=timeline)
        ).timeline
    return DealScreen(page, rows, await choices(db))


async def new_deal_screen(db: Database, contact_id: int | None) -> NewDealScreen:
    name = ""
    if contact_id is not None:
        async with db() as session:
            names = await contact_store.names_of(session, [contact_id])
        if contact_id not in names:
            raise InvalidInput("contact_id", f"no contact {contact_id}")
        name = names[contact_id]
    return NewDealScreen(contact_id, name, await choices(db))
