"""Screen pop: who is calling, built while the operator's phone still rings.

One identify query, the contact's card header and its latest interactions on
every channel; for an unknown number the number itself (and, if the hub is so
configured, the contact just created for it); for a shared number the
candidates. The payload is what ``call.offered`` carries on the live feed.

The same payload is built again, from the stored call rows, for a client that
connects while a call concerning its user is still up
(:func:`pops_in_progress`): the pop follows the operator from page to page.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import CallUpdated
from commhub.domain.contacts import ContactView
from commhub.domain.deals import shown_name
from commhub.domain.interactions import Direction, Medium
from commhub.domain.phones import display_number
from commhub.models import Interaction, Stage, User, utcnow
from commhub.services.calls import (
    caller_number,
    snapshot_of,
)
from commhub.services.counterparts import contact_for
from commhub.services.database import Database
from commhub.services.identify import Verdict
from commhub.store import calls as call_store
from commhub.store import contacts as contact_store
from commhub.store import deals as deal_store
from commhub.store import interactions as interaction_store

log = logging.getLogger(__name__)

RECENT_INTERACTIONS = 5
MAX_CANDIDATES = 5
MAX_OPEN_DEALS = 5
RESTORE_MAX_AGE: Final = timedelta(hours=4)
"""Older calls still open in the log are not popped again on connect: a PBX that never
came back to end them must not leave a pop on every page for good."""


async def screen_pop(
    session: AsyncSession,
    call: CallUpdated,
    extension: str,
    *,
    default_region: str,
    create_unknown: bool,
) -> dict[str, Any]:
    """The ``call.offered`` payload for the operator at ``extension``."""
    number = caller_number(call, default_region)
    found = await contact_for(
        session,
        number.presented,
        region=number.region,
        name=call.caller_name,
        create=create_unknown,
    )
    assert found.identity is not None
    verdict = found.identity.verdict
    contact_ids = found.identity.contact_ids
    if found.created and found.contact_id is not None:
        verdict, contact_ids = Verdict.MATCH, [found.contact_id]
    payload: dict[str, Any] = {
        "call": call_summary(call, number.query.e164, number.region),
        "extension": extension,
        "match": "withheld" if verdict is Verdict.NOT_A_CUSTOMER else verdict.value,
        "contact": None,
        "candidates": [],
        "recent": [],
        "deals": [],
    }
    if verdict is Verdict.MATCH:
        views = await contact_store.load_many(session, contact_ids[:1])
        if views:
            payload["contact"] = contact_summary(views[0])
            payload["contact"]["owner"] = await _owner(session, views[0].owner_id)
            recent = await interaction_store.timeline(
                session, views[0].id, after=None, limit=RECENT_INTERACTIONS + 1
            )
            payload["recent"] = _before_this_call(recent, call)
            payload["deals"] = await _open_deals(session, views[0].id)
    elif verdict is Verdict.UNKNOWN and number.query.e164:
        earlier = await interaction_store.unmatched_from(
            session, number.query.e164, limit=RECENT_INTERACTIONS + 1
        )
        payload["recent"] = _before_this_call(earlier, call)
    elif verdict is Verdict.AMBIGUOUS:
        views = await contact_store.load_many(session, contact_ids[:MAX_CANDIDATES])
        payload["candidates"] = [contact_summary(view) for view in views]
    return payload


def _before_this_call(rows: Iterable[Interaction], call: CallUpdated) -> list[dict[str, Any]]:
    """The caller's history without the call being offered: it is already logged (as
    ringing), and the pop is about it, not a line of its past."""
    return [
        interaction_summary(row)
        for row in rows
        if not (row.channel == Medium.CALL.value and row.external_id == call.external_id)
    ][:RECENT_INTERACTIONS]


async def pops_in_progress(
    db: Database,
    user_id: int,
    *,
    default_region: str,
    up: Collection[str],
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The ``call.offered`` payloads a user should see right now, oldest call first.

    One per inbound call still up (not ended, among ``up``: the calls the
    listening process has seen up since it started, so a call that ended
    while the hub was down never pops before the PBX says so; begun less than
    :data:`RESTORE_MAX_AGE` ago) on which the user's extension rang or talked,
    or whose operator the user is; each built by :func:`screen_pop` from the
    stored row, so it carries the call's current state (ringing or answered).
    Nothing is created here: an unknown caller stays unknown. A database that
    cannot answer yields no pops (logged), so a feed still opens without them.
    """
    try:
        async with db() as session:
            return await _pops_in_progress(
                session, user_id, default_region=default_region, up=up, now=now
            )
    except (SQLAlchemyError, OSError) as exc:
        log.error("screen pops in progress for user %d not sent: %s", user_id, exc)
        return []


async def _pops_in_progress(
    session: AsyncSession,
    user_id: int,
    *,
    default_region: str,
    up: Collection[str],
    now: datetime | None,
) -> list[dict[str, Any]]:
    user = await session.get(User, user_id)
    if user is None or not user.active or not user.extension:
        return []
    extension = user.extension
    since = (now or utcnow()) - RESTORE_MAX_AGE
    rows = await call_store.live_calls(session)  # newest first
    pops = []
    for row in reversed(rows):
        if row.direction != Direction.INBOUND.value or row.occurred_at < since:
            continue
        if row.external_id not in up:
            continue
        extra = row.extra or {}
        handled = (*extra.get("rang", ()), *extra.get("operators", ()))
        if extension not in handled and row.operator_id != user_id:
            continue
        pop = await screen_pop(
            session,
            snapshot_of(row),
            extension,
            default_region=default_region,
            create_unknown=False,
        )
        pops.append(pop)
    return pops


async def _open_deals(session: AsyncSession, contact_id: int) -> list[dict[str, Any]]:
    """The caller's open deals with their stage: what the operator talks about first."""
    deals = (await deal_store.open_for_contact(session, contact_id))[:MAX_OPEN_DEALS]
    shown = []
    for deal in deals:
        stage = await session.get(Stage, deal.stage_id)
        shown.append(
            {
                "id": deal.id,
                "title": deal.title,
                "stage": "" if stage is None else shown_name(stage.name, stage.preset),
                "stage_preset": None if stage is None or stage.name else stage.preset,
            }
        )
    return shown


async def _owner(session: AsyncSession, owner_id: int | None) -> dict[str, Any] | None:
    """Who owns the account, by name: the operator says "Anna's client", not "owner 7"."""
    if owner_id is None:
        return None
    owner = await session.get(User, owner_id)
    if owner is None:
        return None
    return {"id": owner.id, "name": owner.shown_name}


def call_summary(call: CallUpdated, e164: str | None, region: str) -> dict[str, Any]:
    """The call as the operator sees it: the number written the way a person would."""
    return {
        "id": call.external_id,
        "direction": call.direction.value,
        "status": call.status.value,
        "number": e164 or call.number,
        "number_display": display_number(e164, region) if e164 else call.number,
        "caller_name": call.caller_name,
        "did": call.did,
        "queue": call.queue,
        "started_at": call.started_at.isoformat(),
        "answered_at": call.answered_at.isoformat() if call.answered_at else None,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "duration_s": call.duration_s,
        "total_s": call.total_s,
        "wait_s": call.wait_s,
        "operator_talk": dict(call.operator_talk),
        "operators": list(call.operators),
        "transfers": list(call.detail.get("transfers") or ()),
        "approximate_end_s": call.detail.get("approximate_end_s"),
        "recording": call.recording,
    }


def contact_summary(view: ContactView) -> dict[str, Any]:
    return {
        "id": view.id,
        "name": view.name,
        "company": view.company,
        "owner_id": view.owner_id,
        "phones": view.phones,
        "emails": view.emails,
        "tags": view.tags,
        "consents": [
            {"channel": c.channel, "purpose": c.purpose, "granted": c.granted}
            for c in view.consents
        ],
    }


def interaction_summary(row: Interaction) -> dict[str, Any]:
    return {
        "id": row.id,
        "external_id": row.external_id,
        "channel": row.channel,
        "direction": row.direction,
        "status": row.status,
        "occurred_at": row.occurred_at.isoformat(),
        "duration_s": row.duration_s,
        "subject": row.subject,
        "summary": row.summary[:200],
        "operator_id": row.operator_id,
    }
