"""Contact queries: create, load the card, search, merge."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.contacts import ConsentChoice, ConsentView, ContactView, name_key
from commhub.domain.phones import Phone
from commhub.models import (
    Company,
    Consent,
    ConsentEvent,
    Contact,
    ContactPoint,
    ContactTag,
    Deal,
    Interaction,
    Tag,
    utcnow,
)
from commhub.store.contact_points import EMAIL, PHONE
from commhub.store.dialect import upsert_insert


async def company_id(session: AsyncSession, name: str | None) -> int | None:
    """The id of the company called ``name`` (case/space-insensitive), created if new."""
    if not name or not name.strip():
        return None
    key = name_key(name)
    await session.execute(
        upsert_insert(session, Company)
        .values(name=" ".join(name.split()), name_key=key, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["name_key"])
    )
    return await session.scalar(select(Company.id).where(Company.name_key == key))


async def add_points(
    session: AsyncSession, contact_id: int, phones: Iterable[Phone], emails: Iterable[str]
) -> None:
    rows = [
        {"contact_id": contact_id, "kind": PHONE, "value": p.e164, "match_key": p.match_key}
        for p in phones
    ] + [{"contact_id": contact_id, "kind": EMAIL, "value": e, "match_key": e} for e in emails]
    if not rows:
        return
    now = utcnow()
    for row in rows:
        row.update(label="", created_at=now)
    await session.execute(
        upsert_insert(session, ContactPoint)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["contact_id", "kind", "value"])
    )


async def remove_points(
    session: AsyncSession, contact_id: int, kind: str, keep: Iterable[str]
) -> None:
    await session.execute(
        delete(ContactPoint).where(
            ContactPoint.contact_id == contact_id,
            ContactPoint.kind == kind,
            ContactPoint.value.not_in(list(keep)),
        )
    )


async def add_tags(session: AsyncSession, contact_id: int, tags: Iterable[str]) -> None:
    names = list(tags)
    if not names:
        return
    await session.execute(
        upsert_insert(session, Tag)
        .values([{"name": n} for n in names])
        .on_conflict_do_nothing(index_elements=["name"])
    )
    ids = (await session.scalars(select(Tag.id).where(Tag.name.in_(names)))).all()
    await session.execute(
        upsert_insert(session, ContactTag)
        .values([{"contact_id": contact_id, "tag_id": i} for i in ids])
        .on_conflict_do_nothing(index_elements=["contact_id", "tag_id"])
    )


async def set_tags(session: AsyncSession, contact_id: int, tags: Iterable[str]) -> None:
    names = list(tags)
    await session.execute(delete(ContactTag).where(ContactTag.contact_id == contact_id))
    await add_tags(session, contact_id, names)


async def record_consents(
    session: AsyncSession,
    contact_id: int,
    choices: Iterable[ConsentChoice],
    source: str,
    *,
    evidence: str = "",
    by: int | None = None,
) -> None:
    """Set the consent in force per (channel, purpose) and write each change to the ledger.

    An answer equal to the one in force is not a change: the ledger keeps the
    first time it was given (and its evidence), not every form re-saved.
    """
    now = utcnow()
    wanted = list(choices)
    if not wanted:
        return
    current = {
        (c.channel, c.purpose): c.granted
        for c in await session.scalars(select(Consent).where(Consent.contact_id == contact_id))
    }
    for choice in wanted:
        if current.get((choice.channel, choice.purpose)) == choice.granted:
            continue
        statement = upsert_insert(session, Consent).values(
            contact_id=contact_id,
            channel=choice.channel,
            purpose=choice.purpose,
            granted=choice.granted,
            source=source,
            recorded_at=now,
            recorded_by_id=by,
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["contact_id", "channel", "purpose"],
                set_={
                    "granted": choice.granted,
                    "source": source,
                    "recorded_at": now,
                    "recorded_by_id": by,
                },
            )
        )
        session.add(
            ConsentEvent(
                contact_id=contact_id,
                channel=choice.channel,
                purpose=choice.purpose,
                granted=choice.granted,
                source=source,
                evidence=evidence,
                recorded_by_id=by,
                recorded_at=now,
            )
        )
        current[(choice.channel, choice.purpose)] = choice.granted


async def load(session: AsyncSession, contact_id: int) -> ContactView | None:
    """The card's header: the contact, its company, points, tags and consents."""
    found = await load_many(session, [contact_id])
    return found[0] if found else None


async def load_many(session: AsyncSession, contact_ids: Sequence[int]) -> list[ContactView]:
    """Several card headers in four queries, in the order of ``contact_ids``."""
    ids = list(dict.fromkeys(contact_ids))
    if not ids:
        return []
    rows = (
        await session.execute(
            select(Contact, Company.name)
            .outerjoin(Company, Company.id == Contact.company_id)
            .where(Contact.id.in_(ids))
        )
    ).all()
    points: dict[int, list[tuple[str, str]]] = {i: [] for i in ids}
    for contact_id, kind, value in await session.execute(
        select(ContactPoint.contact_id, ContactPoint.kind, ContactPoint.value)
        .where(ContactPoint.contact_id.in_(ids))
        .order_by(ContactPoint.id)
    ):
        points[contact_id].append((kind, value))
    tags: dict[int, list[str]] = {i: [] for i in ids}
    for contact_id, name in await session.execute(
        select(ContactTag.contact_id, Tag.name)
        .join(Tag, Tag.id == ContactTag.tag_id)
        .where(ContactTag.contact_id.in_(ids))
        .order_by(Tag.name)
    ):
        tags[contact_id].append(name)
    consents: dict[int, list[ConsentView]] = {i: [] for i in ids}
    for c in await session.scalars(
        select(Consent)
        .where(Consent.contact_id.in_(ids))
        .order_by(Consent.channel, Consent.purpose)
    ):
        consents[c.contact_id].append(
            ConsentView(c.channel, c.purpose, c.granted, c.source, c.recorded_at)
        )
    views = {
        contact.id: ContactView(
            id=contact.id,
            name=contact.name,
            company=company,
            owner_id=contact.owner_id,
            phones=[v for k, v in points[contact.id] if k == PHONE],
            emails=[v for k, v in points[contact.id] if k == EMAIL],
            tags=tags[contact.id],
            consents=consents[contact.id],
            extra=dict(contact.extra or {}),
            created_at=contact.created_at,
            updated_at=contact.updated_at,
            merged_into_id=contact.merged_into_id,
        )
        for contact, company in rows
    }
    return [views[i] for i in ids if i in views]


async def search_ids(
    session: AsyncSession,
    *,
    ids: Sequence[int] | None = None,
    name: str | None = None,
    company: str | None = None,
    tag: str | None = None,
    before_id: int | None = None,
    limit: int,
) -> list[int]:
    """Ids of live (not merged) contacts matching every given filter, newest first.

    ``name`` matches the start of any word of the name; ``company`` the start
    of the company's name.
    """
    query = select(Contact.id).where(Contact.merged_into_id.is_(None))
    if ids is not None:
        query = query.where(Contact.id.in_(list(ids)))
    if name:
        key = _like_escape(name_key(name))
        query = query.where(
            or_(
                Contact.name_key.like(f"{key}%", escape="\\"),
                Contact.name_key.like(f"% {key}%", escape="\\"),
            )
        )
    if company:
        key = _like_escape(name_key(company))
        query = query.join(Company, Company.id == Contact.company_id).where(
            Company.name_key.like(f"{key}%", escape="\\")
        )
    if tag:
        query = (
            query.join(ContactTag, ContactTag.contact_id == Contact.id)
            .join(Tag, Tag.id == ContactTag.tag_id)
            .where(Tag.name == name_key(tag))
        )
    if before_id is not None:
        query = query.where(Contact.id < before_id)
    query = query.order_by(Contact.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def merge_into(session: AsyncSession, target_id: int, source_id: int) -> None:
    """Move everything of ``source_id`` onto ``target_id`` and mark the source merged.

    Points and tags the target already has are kept once; the target's own
    consent wins unless the source's is newer; interactions and deals follow the contact.
    """
    existing = select(ContactPoint.kind, ContactPoint.value).where(
        ContactPoint.contact_id == target_id
    )
    dupes = {(k, v) for k, v in (await session.execute(existing)).all()}
    for point in (
        await session.scalars(select(ContactPoint).where(ContactPoint.contact_id == source_id))
    ).all():
        if (point.kind, point.value) in dupes:
            await session.delete(point)
        else:
            point.contact_id = target_id
    source_tags = (
        await session.scalars(
            select(Tag.name).join(ContactTag).where(ContactTag.contact_id == source_id)
        )
    ).all()
    await add_tags(session, target_id, source_tags)
    await session.execute(delete(ContactTag).where(ContactTag.contact_id == source_id))
    target_consents = {
        (c.channel, c.purpose): c
        for c in (
            await session.scalars(select(Consent).where(Consent.contact_id == target_id))
        ).all()
    }
    for consent in (
        await session.scalars(select(Consent).where(Consent.contact_id == source_id))
    ).all():
        mine = target_consents.get((consent.channel, consent.purpose))
        if mine is None:
            consent.contact_id = target_id
            continue
        if consent.recorded_at > mine.recorded_at:
            mine.granted, mine.source, mine.recorded_at = (
                consent.granted,
                consent.source,
                consent.recorded_at,
            )
        await session.delete(consent)
    await session.flush()
    await session.execute(
        update(Interaction).where(Interaction.contact_id == source_id).values(contact_id=target_id)
    )
    await session.execute(
        update(Deal).where(Deal.contact_id == source_id).values(contact_id=target_id)
    )
    await session.execute(
        update(Contact).where(Contact.merged_into_id == source_id).values(merged_into_id=target_id)
    )
    await session.execute(
        update(Contact)
        .where(Contact.id == source_id)
        .values(merged_into_id=target_id, updated_at=utcnow())
    )


async def count_live(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(Contact).where(Contact.merged_into_id.is_(None))
        )
        or 0
    )


async def names_of(session: AsyncSession, contact_ids: Iterable[int | None]) -> dict[int, str]:
    """Contact names by id, for lists that show whose each row is."""
    wanted = {i for i in contact_ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(Contact.id, Contact.name).where(Contact.id.in_(wanted)))
    return {contact_id: name for contact_id, name in rows.all()}
