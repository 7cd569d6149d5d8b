"""The manager's start page: the team's funnel at a glance, each person's work done against
work owed, and what each source of deals brought in.

*Done* in the period: calls taken (inbound, not missed) and made, SMS and e-mails sent,
follow-ups completed, and deals won (standing won, closed in the period)
with the sum of sales per currency. *Owed* now: open deals whose next step is
overdue (by the viewer's today), missed calls of the period not called back,
and contacts who wrote in the last 30 days and got no answer since.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final

from commhub.domain.money import Money, totals
from commhub.domain.reports import NOBODY, OperatorResults
from commhub.domain.roles import Role
from commhub.models import Interaction, User, utcnow
from commhub.services import funnel
from commhub.services.database import Database
from commhub.services.errors import NotFound
from commhub.store import reports as report_store
from commhub.store import start_page as store
from commhub.store import users as user_store

WAITING_DAYS: Final = 30
"""How far back an unanswered e-mail still counts as owed."""


@dataclass(slots=True)
class PersonFigures:
    user_id: int
    name: str
    calls: int = 0
    messages: int = 0
    follow_ups: int = 0
    won: int = 0
    won_sums: list[Money] = field(default_factory=list)
    overdue_steps: int = 0
    missed_open: int = 0
    emails_waiting: int = 0

    @property
    def done(self) -> int:
        return self.calls + self.messages + self.follow_ups + self.won

    @property
    def owed(self) -> int:
        return self.overdue_steps + self.missed_open + self.emails_waiting


@dataclass(frozen=True, slots=True)
class SourceFigures:
    source: str
    opened: int
    won: int
    won_sums: list[Money]


@dataclass(frozen=True, slots=True)
class StartPage:
    funnel: funnel.FunnelReport | None
    people: list[PersonFigures]
    sources: list[SourceFigures]
    waiting_since: datetime


async def start_page(db: Database, *, since: datetime, until: datetime, today: date) -> StartPage:
    """The figures for ``[since, until)``; what is owed is counted as of now."""
    waiting_since = utcnow() - timedelta(days=WAITING_DAYS)
    async with db() as session:
        users = [u for u in await user_store.all_users(session) if u.active]
        results = await report_store.operator_results(session, since=since, until=until)
        follow_ups = await store.follow_ups_done(session, since=since, until=until)
        won = await store.won(session, since=since, until=until)
        opened = await store.opened_by_source(session, since=since, until=until)
        overdue = await store.overdue_next_steps(session, today=today)
        waiting = await store.emails_waiting(session, since=waiting_since)
    people = {u.id: PersonFigures(u.id, u.shown_name) for u in users if _shown(u)}
    for user_id, result in results.items():
        if user_id in people:
            _add_results(people[user_id], result)
    for user_id, n in follow_ups.items():
        if user_id in people:
            people[user_id].follow_ups = n
    sums: dict[int, list[Money]] = {}
    by_source: dict[str, tuple[int, list[Money]]] = {}
    for owner, source, currency, n, total in won:
        if owner in people:
            people[owner].won += n
            sums.setdefault(owner, []).append(Money(currency, total))
        count, amounts = by_source.get(source, (0, []))
        by_source[source] = (count + n, [*amounts, Money(currency, total)])
    for owner, amounts in sums.items():
        people[owner].won_sums = totals(amounts)
    for owner, n in overdue.items():
        if owner in people:
            people[owner].overdue_steps = n
    for owner, n in waiting.items():
        if owner in people:
            people[owner].emails_waiting = n
    sources = [
        SourceFigures(
            source,
            opened.get(source, 0),
            by_source.get(source, (0, []))[0],
            totals(by_source.get(source, (0, []))[1]),
        )
        for source in sorted(set(opened) | set(by_source))
    ]
    try:
        report = await funnel.funnel_report(db, pipeline_id=None, since=since, until=until)
    except NotFound:
        report = None
    return StartPage(
        report,
        sorted(people.values(), key=lambda p: (p.name.casefold(), p.user_id)),
        sources,
        waiting_since,
    )


def _shown(user: User) -> bool:
    """Operators and managers, and anyone with an extension: the people who work deals."""
    return user.role in (Role.OPERATOR.value, Role.MANAGER.value) or bool(user.extension)


def _add_results(person: PersonFigures, result: OperatorResults) -> None:
    if result.operator_id == NOBODY:
        return
    person.calls = result.calls_in - result.missed + result.calls_out
    person.messages = result.sms_sent + result.emails_sent
    person.missed_open = result.missed_open


@dataclass(frozen=True, slots=True)
class Waiting:
    """E-mails on a person's cards waiting for an answer (the start page's figure, listed)."""

    owner: str
    rows: list[tuple[Interaction, str]]


async def emails_waiting(db: Database, owner_id: int) -> Waiting:
    since = utcnow() - timedelta(days=WAITING_DAYS)
    async with db() as session:
        rows = await store.waiting_for(session, owner_id, since=since)
        names = await user_store.names_of(session, [owner_id])
    if owner_id not in names:
        raise NotFound("user", owner_id)
    return Waiting(names[owner_id], rows)
