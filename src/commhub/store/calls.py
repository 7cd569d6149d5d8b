"""Call queries: the calls a batch of PBX updates names, missed-call follow-up, click-to-call."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.interactions import Medium, Status
from commhub.domain.pagination import Cursor
from commhub.models import (
    CallHeartbeat,
    CallRequest,
    Interaction,
    MissedCall,
    User,
    utcnow,
)
from commhub.store.dialect import upsert_insert

OPEN = "open"
CALLED_BACK = "called_back"
DISMISSED = "dismissed"


async def calls_by_external_id(
    session: AsyncSession, external_ids: Iterable[str]
) -> dict[str, Interaction]:
    """The call rows already stored for these external ids (one query)."""
    ids = list(set(external_ids))
    if not ids:
        return {}
    rows = await session.scalars(
        select(Interaction).where(
            Interaction.channel == Medium.CALL.value, Interaction.external_id.in_(ids)
        )
    )
    return {row.external_id: row for row in rows}


async def users_by_extension(session: AsyncSession, extensions: Iterable[str]) -> dict[str, int]:
    """Active users' ids by extension, for the extensions given."""
    wanted = list(set(extensions))
    if not wanted:
        return {}
    rows = await session.execute(
        select(User.extension, User.id).where(User.extension.in_(wanted), User.active.is_(True))
    )
    return {extension: user_id for extension, user_id in rows if extension is not None}


async def open_missed(
    session: AsyncSession, call: Interaction, *, number: str, match_key: str | None
) -> None:
    """Put a missed call on the follow-up list (once, however often it is recorded)."""
    await session.execute(
        upsert_insert(session, MissedCall)
        .values(
            interaction_id=call.id,
            contact_id=call.contact_id,
            number=number[:64],
            match_key=match_key,
            occurred_at=call.occurred_at,
            state=OPEN,
        )
        .on_conflict_do_nothing(index_elements=["interaction_id"])
    )


async def close_missed_by_call(
    session: AsyncSession,
    *,
    match_key: str,
    before: datetime,
    call_id: int,
    number: str | None = None,
    country_prefix: str | None = None,
) -> int:
    """Mark every open missed call from this number before ``before`` as called back.

    ``number`` (E.164) keeps it to that exact number, ``country_prefix`` (``+44``) to
    numbers of that country; otherwise every number sharing the match key counts.
    """
    statement = update(MissedCall).where(
        MissedCall.match_key == match_key,
        MissedCall.state == OPEN,
        MissedCall.occurred_at <= before,
    )
    if number is not None:
        statement = statement.where(MissedCall.number == number)
    elif country_prefix is not None:
        statement = statement.where(MissedCall.number.startswith(country_prefix, autoescape=True))
    result = await session.execute(
        statement.values(
            state=CALLED_BACK, resolved_at=utcnow(), resolved_by_interaction_id=call_id
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def dismiss_missed(session: AsyncSession, missed_id: int, user_id: int) -> MissedCall | None:
    row = await session.get(MissedCall, missed_id)
    if row is None:
        return None
    if row.state == OPEN:
        row.state = DISMISSED
        row.resolved_at = utcnow()
        row.resolved_by_id = user_id
    return row


async def missed_page(
    session: AsyncSession,
    *,
    state: str | None,
    operator_id: int | None,
    after: Cursor | None,
    limit: int,
) -> Sequence[tuple[MissedCall, Interaction]]:
    """Missed calls with their call rows, newest first, keyset-paginated."""
    query = select(MissedCall, Interaction).join(
        Interaction, Interaction.id == MissedCall.interaction_id
    )
    if state is not None:
        query = query.where(MissedCall.state == state)
    if operator_id is not None:
        query = query.where(Interaction.operator_id == operator_id)
    if after is not None:
        query = query.where(
            tuple_(MissedCall.occurred_at, MissedCall.id) < tuple_(after.occurred_at, after.id)
        )
    query = query.order_by(MissedCall.occurred_at.desc(), MissedCall.id.desc()).limit(limit)
    return [(missed, call) for missed, call in (await session.execute(query)).all()]


async def link_request(session: AsyncSession, request_id: str, call: Interaction) -> None:
    """Tie a click-to-call request to the call it became; a failed one keeps the PBX's reason."""
    values: dict[str, object] = {"interaction_id": call.id, "status": call.status}
    reason = (call.extra or {}).get("reason")
    if call.status == Status.FAILED.value and reason:
        values["error"] = str(reason)
    await session.execute(update(CallRequest).where(CallRequest.id == request_id).values(**values))


async def open_calls(
    session: AsyncSession, *, prefix: str, before: datetime
) -> Sequence[Interaction]:
    """Calls of one PBX (external ids starting with ``prefix``) begun before ``before``
    and not ended (read through the partial index on open interactions)."""
    rows = await session.scalars(
        select(Interaction).where(
            Interaction.ended_at.is_(None),
            Interaction.channel == Medium.CALL.value,
            Interaction.occurred_at <= before,
            Interaction.external_id.startswith(prefix, autoescape=True),
        )
    )
    return rows.all()


async def open_call_counts(session: AsyncSession, pbxs: Iterable[str]) -> dict[str, int]:
    """How many calls of each PBX the log shows in progress (external ids ``<pbx>:…``)."""
    counts: dict[str, int] = {}
    for pbx in pbxs:
        counted = await session.scalar(
            select(func.count())
            .select_from(Interaction)
            .where(
                Interaction.ended_at.is_(None),
                Interaction.channel == Medium.CALL.value,
                Interaction.external_id.startswith(f"{pbx}:", autoescape=True),
            )
        )
        counts[pbx] = int(counted or 0)
    return counts


async def beat(session: AsyncSession, prefix: str, at: datetime) -> None:
    """Note that every call of this PBX open in the log was up at ``at`` (never backwards)."""
    insert = upsert_insert(session, CallHeartbeat).values(prefix=prefix, at=at)
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["prefix"],
            set_={"at": insert.excluded.at},
            where=CallHeartbeat.at < insert.excluded.at,
        )
    )


async def last_beat(session: AsyncSession, prefix: str) -> datetime | None:
    return await session.scalar(select(CallHeartbeat.at).where(CallHeartbeat.prefix == prefix))


async def live_calls(session: AsyncSession, *, limit: int = 500) -> Sequence[Interaction]:
    """Calls not yet ended, newest first: the manager's "now" view."""
    rows = await session.scalars(
        select(Interaction)
        .where(Interaction.channel == Medium.CALL.value, Interaction.ended_at.is_(None))
        .order_by(Interaction.occurred_at.desc())
        .limit(limit)
    )
    return rows.all()
