"""The values a message template may use, for many contacts at once: a few queries per chunk.

Fields without a value are left out rather than set to "", so ``default()``
in a template applies to them.

``contact``, ``company``, ``owner`` and ``deal`` (the contact's latest open
deal) as plain mappings of strings, which is all a sandboxed template may
read. A campaign's fill job asks for a chunk of 500 contacts; the editor's
preview asks for one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from babel.numbers import format_currency
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.deals import shown_name
from commhub.models import Company, Contact, ContactPoint, Deal, Stage, User

Values = dict[str, Any]


async def values_for(
    session: AsyncSession, contact_ids: Sequence[int], *, locale: str = "en"
) -> dict[int, Values]:
    """``contact``, ``company``, ``owner`` and ``deal`` for each contact id found."""
    if not contact_ids:
        return {}
    ids = list(contact_ids)
    contacts = {c.id: c for c in await session.scalars(select(Contact).where(Contact.id.in_(ids)))}
    company_ids = {c.company_id for c in contacts.values() if c.company_id is not None}
    owner_ids = {c.owner_id for c in contacts.values() if c.owner_id is not None}
    companies = (
        {
            c.id: c.name
            for c in await session.scalars(select(Company).where(Company.id.in_(company_ids)))
        }
        if company_ids
        else {}
    )
    owners = (
        {u.id: u for u in await session.scalars(select(User).where(User.id.in_(owner_ids)))}
        if owner_ids
        else {}
    )
    points: dict[int, dict[str, str]] = defaultdict(dict)
    for contact_id, kind, value in await session.execute(
        select(ContactPoint.contact_id, ContactPoint.kind, ContactPoint.value)
        .where(ContactPoint.contact_id.in_(ids))
        .order_by(ContactPoint.contact_id, ContactPoint.id.desc())
    ):
        points[contact_id][kind] = value  # the first one listed wins: read newest first
    deals = await _open_deals(session, ids, locale)
    found: dict[int, Values] = {}
    for contact_id, contact in contacts.items():
        first, _, last = (contact.name or "").strip().partition(" ")
        company = companies.get(contact.company_id or 0, "")
        owner = owners.get(contact.owner_id or 0)
        extra = {str(k): str(v) for k, v in (contact.extra or {}).items()}
        found[contact_id] = _filled(
            {
                "contact": {
                    **extra,
                    "name": contact.name or "",
                    "first_name": first,
                    "last_name": last.strip(),
                    "company": company,
                    "email": points[contact_id].get("email", ""),
                    "phone": points[contact_id].get("phone", ""),
                    "city": extra.get("city", ""),
                },
                "company": {"name": company},
                "owner": {
                    "name": owner.shown_name if owner else "",
                    "extension": (owner.extension or "") if owner else "",
                },
                "deal": deals.get(contact_id, {}),
            }
        )
    return found


def _filled(values: Values) -> Values:
    """Empty fields left out: a template's ``default()`` then applies, and the editor names them
    as missing, as it does for a field the contact has never had."""
    return {
        group: {key: value for key, value in fields.items() if value not in ("", None)}
        for group, fields in values.items()
    }


async def _open_deals(session: AsyncSession, ids: list[int], locale: str) -> dict[int, Values]:
    rows = await session.execute(
        select(Deal, Stage.name, Stage.preset)
        .join(Stage, Stage.id == Deal.stage_id)
        .where(Deal.contact_id.in_(ids), Deal.closed_at.is_(None))
        .order_by(Deal.contact_id, Deal.updated_at)
    )
    found: dict[int, Values] = {}
    for deal, stage_name, preset in rows:
        assert deal.contact_id is not None
        found[deal.contact_id] = {  # the latest updated wins
            "title": deal.title,
            "amount": format_currency(deal.amount, deal.currency, locale=locale),
            "currency": deal.currency,
            "stage": shown_name(stage_name, preset),
        }
    return found
