"""Screen pop: who is calling, built while the operator's phone still rings.

One identify query, the contact's card header and its latest interactions on
every channel; for an unknown number the number itself (and, if the hub is so
configured, the contact just created for it); for a shared number the
candidates. The payload is what ``call.offered`` carries on the live feed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import CallUpdated
from commhub.domain.phones import display_number
from commhub.services.calls import caller_number, contact_for_caller, identify_number
from commhub.services.identify import Verdict
from commhub.store import contacts as contact_store
from commhub.store import interactions as interaction_store
from commhub.store.contacts import ContactView
from commhub.store.schema import Interaction, User

RECENT_INTERACTIONS = 5
MAX_CANDIDATES = 5


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
    found = await identify_number(session, number)
    verdict = found.verdict
    contact_ids = found.contact_ids
    if verdict is Verdict.UNKNOWN and create_unknown:
        created = await contact_for_caller(session, number, name=call.caller_name, create=True)
        if created is not None:
            verdict, contact_ids = Verdict.MATCH, [created]
    payload: dict[str, Any] = {
        "call": call_summary(call, number.query.e164, number.region),
        "extension": extension,
        "match": "withheld" if verdict is Verdict.NOT_A_CUSTOMER else verdict.value,
        "contact": None,
        "candidates": [],
        "recent": [],
    }
    if verdict is Verdict.MATCH:
        views = await contact_store.load_many(session, contact_ids[:1])
        if views:
            payload["contact"] = contact_summary(views[0])
            payload["contact"]["owner"] = await _owner(session, views[0].owner_id)
            recent = await interaction_store.timeline(
                session, views[0].id, after=None, limit=RECENT_INTERACTIONS
            )
            payload["recent"] = [interaction_summary(row) for row in recent]
    elif verdict is Verdict.UNKNOWN and number.query.e164:
        earlier = await interaction_store.unmatched_from(
            session, number.query.e164, limit=RECENT_INTERACTIONS + 1
        )
        # The ringing call itself is already logged: show what came before it.
        payload["recent"] = [
            interaction_summary(row) for row in earlier if row.external_id != call.external_id
        ][:RECENT_INTERACTIONS]
    elif verdict is Verdict.AMBIGUOUS:
        views = await contact_store.load_many(session, contact_ids[:MAX_CANDIDATES])
        payload["candidates"] = [contact_summary(view) for view in views]
    return payload


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
        "operators": list(call.operators),
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
        "channel": row.channel,
        "direction": row.direction,
        "status": row.status,
        "occurred_at": row.occurred_at.isoformat(),
        "duration_s": row.duration_s,
        "subject": row.subject,
        "summary": row.summary[:200],
        "operator_id": row.operator_id,
    }
