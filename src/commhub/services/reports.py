"""What people see of their work: an operator's day on the home page, the team's results
on the manager's dashboard. Both count through ``store/reports.py``, so they agree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from commhub.domain.interactions import InteractionFilter, Medium
from commhub.domain.reports import OperatorResults
from commhub.models import Contact, FollowUp, Interaction, MissedCall, User
from commhub.services.database import Database
from commhub.store import calls as call_store
from commhub.store import contacts as contact_store
from commhub.store import follow_ups
from commhub.store import interactions as interaction_store
from commhub.store import users as user_store
from commhub.store.reports import operator_results


@dataclass(frozen=True, slots=True)
class Day:
    """An operator's day: their figures, missed calls to return, follow-ups, latest calls."""

    results: OperatorResults
    missed: Sequence[tuple[MissedCall, Interaction]]
    follow_ups: Sequence[tuple[FollowUp, Contact]]
    calls: Sequence[Interaction]
    names: dict[int, str]
    """Contact names by id, for the calls and missed calls shown."""


@dataclass(frozen=True, slots=True)
class TeamResults:
    results: dict[int, OperatorResults]
    """By operator id; ``NOBODY`` for what no operator handled."""
    users: Sequence[User]


async def day_of(
    db: Database,
    user_id: int,
    *,
    since: datetime,
    until: datetime,
    missed_shown: int,
    calls_shown: int,
) -> Day:
    """The home page's figures and lists for one user, read in one session so they agree."""
    async with db() as session:
        found = await operator_results(session, since=since, until=until, operator_ids=[user_id])
        missed = await call_store.missed_page(
            session, state=call_store.OPEN, operator_id=user_id, after=None, limit=missed_shown
        )
        due = await follow_ups.open_for_user(session, user_id)
        calls = await interaction_store.search(
            session,
            InteractionFilter(channel=Medium.CALL.value, operator_id=user_id, since=since),
            after=None,
            limit=calls_shown,
        )
        names = await contact_store.names_of(
            session, [c.contact_id for c in calls] + [m.contact_id for m, _ in missed]
        )
    results = found.get(user_id) or OperatorResults(operator_id=user_id)
    return Day(results, missed, due, calls, names)


async def team_results(db: Database, *, since: datetime, until: datetime) -> TeamResults:
    """Every operator's figures for the period, and the users the dashboard may show."""
    async with db() as session:
        results = await operator_results(session, since=since, until=until)
        users = await user_store.all_users(session)
    return TeamResults(results, users)
