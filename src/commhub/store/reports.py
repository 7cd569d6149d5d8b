"""Per-operator results over a period: the operator's home and the manager's dashboard.

One grouped query over the interaction log (served by ``ix_interactions_operator``)
and one over open missed calls; the same definitions everywhere, so the
operator's own figures and the manager's table never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from commhub.domain.interactions import Direction, Medium, Status
from commhub.domain.reports import NOBODY, OperatorResults
from commhub.models import Interaction, MissedCall
from commhub.store.calls import OPEN

MISSED_STATUSES = (Status.MISSED.value, Status.ABANDONED.value)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def operator_results(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    operator_ids: Sequence[int] | None = None,
) -> dict[int, OperatorResults]:
    """Results per operator for interactions in ``[since, until)``; absent: no interactions.

    What no operator handled is under :data:`NOBODY` (never asked for by ``operator_ids``).
    """
    call = Interaction.channel == Medium.CALL.value
    answered = and_(call, Interaction.status == Status.ANSWERED.value)
    query = (
        select(
            Interaction.operator_id,
            _count(and_(call, Interaction.direction == Direction.INBOUND.value)),
            _count(and_(call, Interaction.direction == Direction.OUTBOUND.value)),
            _count(answered),
            _count(
                and_(
                    call,
                    Interaction.direction == Direction.INBOUND.value,
                    Interaction.status.in_(MISSED_STATUSES),
                )
            ),
            func.coalesce(func.sum(case((answered, Interaction.duration_s), else_=0)), 0),
            _count(and_(answered, Interaction.duration_s.is_not(None))),
            _count(
                and_(
                    Interaction.channel == Medium.SMS.value,
                    Interaction.direction == Direction.OUTBOUND.value,
                )
            ),
            _count(
                and_(
                    Interaction.channel == Medium.EMAIL.value,
                    Interaction.direction == Direction.OUTBOUND.value,
                )
            ),
        )
        .where(
            Interaction.occurred_at >= since,
            Interaction.occurred_at < until,
        )
        .group_by(Interaction.operator_id)
    )
    if operator_ids is not None:
        query = query.where(Interaction.operator_id.in_(list(operator_ids)))
    results: dict[int, OperatorResults] = {}
    rows = await session.execute(query)
    for operator_id, c_in, c_out, ans, missed, talk, timed, sms, emails in rows:
        key = NOBODY if operator_id is None else operator_id
        results[key] = OperatorResults(
            operator_id=key,
            calls_in=int(c_in),
            calls_out=int(c_out),
            answered=int(ans),
            missed=int(missed),
            talk_s=int(talk or 0),
            timed=int(timed),
            sms_sent=int(sms),
            emails_sent=int(emails),
        )
    open_query = (
        select(Interaction.operator_id, func.count())
        .select_from(MissedCall)
        .join(Interaction, Interaction.id == MissedCall.interaction_id)
        .where(
            MissedCall.state == OPEN,
            MissedCall.occurred_at >= since,
            MissedCall.occurred_at < until,
        )
        .group_by(Interaction.operator_id)
    )
    if operator_ids is not None:
        open_query = open_query.where(Interaction.operator_id.in_(list(operator_ids)))
    for operator_id, count in await session.execute(open_query):
        key = NOBODY if operator_id is None else operator_id
        found = results.get(key) or OperatorResults(operator_id=key)
        results[key] = replace(found, missed_open=int(count))
    return results
