"""A static list of contacts and the templates a campaign to it sends, written as the tests
need them: campaign tests start from people already chosen, not from a segment's rules."""

from __future__ import annotations

from collections.abc import Iterable

from commhub.models import MessageTemplate, Segment, SegmentMember
from commhub.store.engine import SessionFactory


async def static_list(
    sessions: SessionFactory,
    name: str,
    contact_ids: Iterable[int],
    *templates: MessageTemplate,
) -> tuple[int, list[int]]:
    """The list's id and the templates' ids, in the order given."""
    async with sessions() as session:
        segment = Segment(name=name, kind="static")
        session.add_all([segment, *templates])
        await session.flush()
        session.add_all(SegmentMember(segment_id=segment.id, contact_id=i) for i in contact_ids)
        await session.commit()
        return segment.id, [t.id for t in templates]
