"""Segments as marketers keep them: dynamic rules counted live, static lists of chosen people.

A dynamic segment is evaluated whenever it is used (its count now, a
campaign's frozen list at its start); a static list holds the contacts put
on it — a selection, or everyone an import brought in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.segments import SegmentError, read_rules
from commhub.models import Contact, Import, Segment, SegmentMember, utcnow
from commhub.services.database import Database
from commhub.services.errors import InvalidInput, NotFound
from commhub.store import segments as store

SAMPLE: Final = 20
MAX_SELECTION: Final = 10_000
KINDS: Final = ("dynamic", "static")


@dataclass(frozen=True, slots=True)
class Preview:
    count: int
    sample: list[Any]
    """Rows of (id, name, company, phone, email), first by id."""


async def preview(db: Database, rules: Any, *, limit: int = SAMPLE) -> Preview:
    """How many contacts unsaved ``rules`` hold now, and the first few: the live count."""
    chosen = store.members(_rules(rules))
    async with db() as session:
        return Preview(
            await store.count(session, chosen), await store.sample(session, chosen, limit)
        )


async def create(
    db: Database,
    *,
    name: str,
    kind: str,
    rules: Any = None,
    description: str = "",
    user_id: int | None,
) -> Segment:
    _check(name, kind)
    if kind == "dynamic":
        _rules(rules)
    async with db() as session:
        row = Segment(
            name=name.strip(),
            kind=kind,
            rules=rules if kind == "dynamic" else None,
            description=description,
            created_by_id=user_id,
        )
        session.add(row)
        await session.commit()
        return row


async def update(db: Database, segment_id: int, changes: dict[str, Any]) -> Segment:
    async with db() as session:
        row = await _get(session, segment_id)
        if changes.get("description", "") is None:
            raise InvalidInput("description", "give a value (it cannot be null)")
        if "name" in changes:
            _check(changes["name"], row.kind)
            row.name = changes["name"].strip()
        if "description" in changes:
            row.description = changes["description"]
        if "rules" in changes:
            if row.kind != "dynamic":
                raise InvalidInput("rules", "a static list has members, not rules")
            _rules(changes["rules"])
            row.rules = changes["rules"]
        await session.commit()
        return row


async def remove(db: Database, segment_id: int) -> None:
    """Set aside; campaigns keep the list they froze."""
    async with db() as session:
        row = await _get(session, segment_id)
        row.removed_at = utcnow()
        await session.commit()


async def get(db: Database, segment_id: int) -> tuple[Segment, int]:
    """The segment and how many it holds now."""
    async with db() as session:
        row = await _get(session, segment_id)
        return row, await store.count(session, _members(row))


async def listing(db: Database) -> list[Segment]:
    async with db() as session:
        rows = await session.scalars(
            select(Segment).where(Segment.removed_at.is_(None)).order_by(Segment.name, Segment.id)
        )
        return list(rows)


async def members_sample(db: Database, segment_id: int, *, limit: int = SAMPLE) -> Preview:
    async with db() as session:
        row = await _get(session, segment_id)
        chosen = _members(row)
        return Preview(
            await store.count(session, chosen), await store.sample(session, chosen, limit)
        )


async def add_members(db: Database, segment_id: int, contact_ids: Sequence[int]) -> int:
    """Put contacts on a static list (those already on it stay once); how many it holds."""
    ids = _selection(contact_ids)
    async with db() as session:
        row = await _static(session, segment_id)
        existing = set(
            await session.scalars(
                select(Contact.id).where(Contact.id.in_(ids), Contact.merged_into_id.is_(None))
            )
        )
        missing = sorted(set(ids) - existing)
        if missing:
            raise InvalidInput("contact_ids", f"no such contacts: {missing[:10]}")
        already = set(
            await session.scalars(
                select(SegmentMember.contact_id).where(
                    SegmentMember.segment_id == row.id, SegmentMember.contact_id.in_(ids)
                )
            )
        )
        fresh = [i for i in dict.fromkeys(ids) if i not in already]
        if fresh:
            await session.execute(
                insert(SegmentMember), [{"segment_id": row.id, "contact_id": i} for i in fresh]
            )
        await session.commit()
        return await store.count(session, store.listed(row.id))


async def remove_members(db: Database, segment_id: int, contact_ids: Sequence[int]) -> int:
    ids = _selection(contact_ids)
    async with db() as session:
        row = await _static(session, segment_id)
        await session.execute(
            delete(SegmentMember).where(
                SegmentMember.segment_id == row.id, SegmentMember.contact_id.in_(ids)
            )
        )
        await session.commit()
        return await store.count(session, store.listed(row.id))


async def from_import(db: Database, import_id: int, *, name: str, user_id: int | None) -> Segment:
    """A static list of every contact an import created (merged ones left out)."""
    _check(name, "static")
    async with db() as session:
        if await session.get(Import, import_id) is None:
            raise NotFound("import", import_id)
        row = Segment(name=name.strip(), kind="static", import_id=import_id, created_by_id=user_id)
        session.add(row)
        await session.flush()
        await session.execute(
            insert(SegmentMember).from_select(
                ["segment_id", "contact_id"],
                select(Segment.id, Contact.id)
                .where(Segment.id == row.id)
                .join(Contact, Contact.import_id == import_id)
                .where(Contact.merged_into_id.is_(None)),
            )
        )
        await session.commit()
        return row


def _members(row: Segment) -> Any:
    try:
        return store.of_segment(row)
    except SegmentError as exc:  # saved before a rule changed meaning: say so, do not fail
        raise InvalidInput("rules", str(exc)) from None


def _rules(rules: Any) -> Any:
    try:
        return read_rules(rules)
    except SegmentError as exc:
        raise InvalidInput(exc.path, exc.reason) from None


def _check(name: Any, kind: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name", "give the segment a name")
    if len(name) > 200:
        raise InvalidInput("name", "at most 200 characters")
    if kind not in KINDS:
        raise InvalidInput("kind", "dynamic or static")


def _selection(contact_ids: Sequence[int]) -> list[int]:
    if not contact_ids:
        raise InvalidInput("contact_ids", "choose at least one contact")
    if len(contact_ids) > MAX_SELECTION:
        raise InvalidInput("contact_ids", f"at most {MAX_SELECTION:,} at a time")
    return list(contact_ids)


async def _get(session: AsyncSession, segment_id: int) -> Segment:
    row = await session.get(Segment, segment_id)
    if row is None or row.removed_at is not None:
        raise NotFound("segment", segment_id)
    return row


async def _static(session: AsyncSession, segment_id: int) -> Segment:
    row = await _get(session, segment_id)
    if row.kind != "static":
        raise InvalidInput("segment", "only a static list has members to add or remove")
    return row
