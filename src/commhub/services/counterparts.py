"""Who a call, an SMS or an e-mail is with: one lookup for every channel, and the one
place that creates a contact for an unknown address (when the settings ask for it).

Screen pop and filing may both want to create the contact for the same
ringing call, or two messages from one new sender may come together: a lock
per address makes the second find the first's, and the new contact is
committed at once so every session sees it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain import phones
from commhub.domain.contacts import name_key
from commhub.models import Contact
from commhub.services.identify import Identity, Verdict, identify
from commhub.store import contact_points
from commhub.store import contacts as contact_store

log = logging.getLogger(__name__)

_creating: dict[str, asyncio.Lock] = {}


@dataclass(frozen=True, slots=True)
class Counterpart:
    """The contact an address names, or the contacts it could be (never a guess)."""

    contact_id: int | None
    candidates: tuple[int, ...] = ()
    identity: Identity | None = None
    created: bool = False


async def contact_for(
    session: AsyncSession, address: str, *, region: str, name: str = "", create: bool
) -> Counterpart:
    """The contact behind ``address`` (a phone in any format, read in ``region``, or an
    e-mail); with ``create``, a new contact called ``name`` for an unknown one."""
    found = await identify(session, address, region=region)
    if found.verdict is Verdict.MATCH:
        return Counterpart(found.contact_ids[0], identity=found)
    if found.verdict is Verdict.AMBIGUOUS:
        return Counterpart(None, tuple(found.contact_ids), identity=found)
    if not create or found.verdict is not Verdict.UNKNOWN or found.normalized is None:
        return Counterpart(None, identity=found)
    key = f"{found.kind}:{found.normalized}"
    lock = _creating.setdefault(key, asyncio.Lock())
    try:
        async with lock:
            again = await identify(session, address, region=region)
            if again.verdict is not Verdict.UNKNOWN:
                ids = tuple(again.contact_ids)
                one = ids[0] if again.verdict is Verdict.MATCH else None
                return Counterpart(one, () if one else ids, identity=again)
            contact_id = await _create(session, address, found, region=region, name=name)
            await session.commit()
            log.info("created contact %d for an unknown %s", contact_id, found.kind)
            return Counterpart(contact_id, identity=found, created=True)
    finally:
        if not lock.locked():
            _creating.pop(key, None)


async def _create(
    session: AsyncSession, address: str, found: Identity, *, region: str, name: str
) -> int:
    contact = Contact(name=" ".join(name.split()), name_key=name_key(name), extra={})
    session.add(contact)
    await session.flush()
    assert found.normalized is not None
    if found.kind == contact_points.PHONE:
        query = phones.read_number(address, region)
        phone = phones.Phone(e164=found.normalized, match_key=query.match_key or "")
        await contact_store.add_points(session, contact.id, [phone], [])
    else:
        await contact_store.add_points(session, contact.id, [], [found.normalized])
    return contact.id
