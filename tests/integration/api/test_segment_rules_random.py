"""Random rule trees against a plain Python reading of the same rules, on both databases.

Forty generated contacts (every one with a city and an owner, so that each
condition is plainly true or false for them) with tags, consents, interactions
(and some with no contact at all), missed calls and deals; for each of many
random trees of ``all``/``any``/``not`` over those conditions, the live count
(``/segments/preview``) must name exactly the contacts the Python reading
does. Exactness of the SQL the store compiles is what this guards.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from commhub.domain.roles import Role
from commhub.models import (
    Consent,
    Contact,
    ContactTag,
    Deal,
    Interaction,
    MissedCall,
    Pipeline,
    Stage,
    Tag,
    User,
)
from commhub.store.engine import SessionFactory

Client = TestClient[Any, Any]
NOW: Final = datetime.now(UTC)
CITIES: Final = ("Moscow", "Kazan", "Omsk")
TAGS: Final = ("vip", "lead", "partner")
CHANNELS: Final = ("call", "sms", "email")
DAYS: Final = (1, 15, 45, 120, 400)
AUTH: dict[str, str] = {}


@dataclass
class Person:
    """What the rules can see of one contact, as the test wrote it."""

    id: int = 0
    city: str = ""
    owner: int = 0
    merged: bool = False
    tags: set[str] = field(default_factory=set)
    consents: dict[tuple[str, str], bool] = field(default_factory=dict)
    interactions: list[tuple[str, str, datetime]] = field(default_factory=list)
    missed: list[datetime] = field(default_factory=list)
    deals: list[tuple[str, datetime | None]] = field(default_factory=list)
    """(stage kind, closed_at)."""


@pytest.fixture(autouse=True)
def marketer(accounts: dict[Role, Any]) -> None:
    AUTH.clear()
    AUTH.update(accounts[Role.MARKETER].auth)


@pytest.fixture
async def people(sessions: SessionFactory) -> list[Person]:
    rng = random.Random(20261204)
    async with sessions() as session:
        owners = list((await session.scalars(select(User.id).order_by(User.id))).all())[:3]
        tags = {name: Tag(name=name) for name in TAGS}
        session.add_all(tags.values())
        pipeline = Pipeline(name="Sales")
        session.add(pipeline)
        await session.flush()
        stages = {
            kind: Stage(pipeline_id=pipeline.id, name=kind, kind=kind, position=i)
            for i, kind in enumerate(("open", "won", "lost"))
        }
        session.add_all(stages.values())
        found: list[Person] = []
        for n in range(40):
            person = Person(city=rng.choice(CITIES), owner=rng.choice(owners))
            contact = Contact(
                name=f"P{n}", name_key=f"p{n}", owner_id=person.owner, extra={"city": person.city}
            )
            session.add(contact)
            await session.flush()
            person.id = contact.id
            if found and rng.random() < 0.1:
                person.merged = True
                contact.merged_into_id = found[0].id
            person.tags = set(rng.sample(TAGS, rng.randint(0, 2)))
            session.add_all(
                ContactTag(contact_id=contact.id, tag_id=tags[t].id) for t in person.tags
            )
            for channel in ("email", "sms"):
                if rng.random() < 0.6:
                    granted = rng.random() < 0.6
                    person.consents[(channel, "marketing")] = granted
                    session.add(
                        Consent(
                            contact_id=contact.id,
                            channel=channel,
                            purpose="marketing",
                            granted=granted,
                            source="t",
                        )
                    )
            for k in range(rng.choice((0, 1, 2, 3, 5))):
                channel, direction = rng.choice(CHANNELS), rng.choice(("in", "out"))
                at = NOW - timedelta(days=rng.randint(0, 500), hours=rng.randint(0, 23))
                person.interactions.append((channel, direction, at))
                row = Interaction(
                    channel=channel,
                    direction=direction,
                    status="answered",
                    external_id=f"r-{n}-{k}",
                    contact_id=contact.id,
                    occurred_at=at,
                )
                session.add(row)
                if channel == "call" and direction == "in" and rng.random() < 0.5:
                    await session.flush()
                    person.missed.append(at)
                    session.add(
                        MissedCall(
                            interaction_id=row.id,
                            contact_id=contact.id,
                            number="+1",
                            occurred_at=at,
                        )
                    )
            for _ in range(rng.choice((0, 0, 1, 2))):
                kind = rng.choice(("open", "won", "lost"))
                closed = None if kind == "open" else NOW - timedelta(days=rng.randint(0, 200))
                person.deals.append((kind, closed))
                session.add(
                    Deal(
                        pipeline_id=pipeline.id,
                        stage_id=stages[kind].id,
                        contact_id=contact.id,
                        title="d",
                        amount=Decimal(100),
                        currency="RUB",
                        source="manual",
                        closed_at=closed,
                    )
                )
            found.append(person)
        # Rows of no contact: a NULL in a set must not turn NOT into "nobody".
        for k, channel in enumerate(CHANNELS):
            orphan = Interaction(
                channel=channel,
                direction="in",
                status="answered",
                external_id=f"orphan-{k}",
                contact_id=None,
                occurred_at=NOW - timedelta(days=2),
            )
            session.add(orphan)
            await session.flush()
            session.add(
                MissedCall(interaction_id=orphan.id, number="+2", occurred_at=orphan.occurred_at)
            )
        session.add(
            Deal(
                pipeline_id=pipeline.id,
                stage_id=stages["open"].id,
                title="nobody's",
                currency="RUB",
                source="manual",
            )
        )
        await session.commit()
    return found


def day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).date().isoformat()


def start_of(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def random_condition(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(("city", "owner", "tag", "consent", "interaction", "missed", "deal"))
    if kind == "city":
        return {"field": "city", "op": "equals", "value": rng.choice(CITIES)}
    if kind == "owner":
        return {"field": "owner", "op": "equals", "value": rng.randint(1, 4)}
    if kind == "tag":
        return {"field": "tag", "op": "has", "value": rng.choice(TAGS)}
    if kind == "consent":
        op = rng.choice(("granted", "withdrawn", "none"))
        return {"field": "consent", "op": op, "value": {"channel": rng.choice(("email", "sms"))}}
    if kind == "missed":
        return {"field": "missed_call", "op": "any_after", "value": day(rng.choice(DAYS))}
    if kind == "deal":
        op = rng.choice(("open", "any", "won_after", "lost_after"))
        return {"field": "deal", "op": op, "value": {"date": day(rng.choice(DAYS))}}
    value: dict[str, Any] = {}
    if rng.random() < 0.7:
        value["channel"] = rng.choice(CHANNELS)
    if rng.random() < 0.5:
        value["direction"] = rng.choice(("in", "out"))
    op = rng.choice(("any_after", "none_after", "last_before", "count_at_least", "count_at_most"))
    if op.startswith("count"):
        value |= {"since": day(rng.choice(DAYS)), "count": rng.choice((0, 1, 2, 3))}
    else:
        value["date"] = day(rng.choice(DAYS))
    return {"field": "interaction", "op": op, "value": value}


def random_tree(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    if depth >= 3 or rng.random() < 0.3:
        return random_condition(rng)
    kind = rng.choice(("all", "any", "any", "not"))
    if kind == "not":
        return {"not": random_tree(rng, depth + 1)}
    return {kind: [random_tree(rng, depth + 1) for _ in range(rng.randint(1, 4))]}


def holds(rule: dict[str, Any], p: Person) -> bool:
    """The rule read plainly, contact by contact."""
    if "all" in rule:
        return all(holds(child, p) for child in rule["all"])
    if "any" in rule:
        return any(holds(child, p) for child in rule["any"])
    if "not" in rule:
        return not holds(rule["not"], p)
    if rule["field"] == "interaction":
        return interacted(rule["op"], rule["value"], p)
    op, value = rule["op"], rule["value"]
    match rule["field"]:
        case "city":
            return p.city == value
        case "owner":
            return p.owner == value
        case "tag":
            return value in p.tags
        case "consent":
            answer = p.consents.get((value["channel"], "marketing"))
            return answer is None if op == "none" else answer is (op == "granted")
        case "missed_call":
            return any(at >= start_of(value) for at in p.missed)
        case "deal":
            if op == "open":
                return any(closed is None for _, closed in p.deals)
            if op == "any":
                return bool(p.deals)
            kind = "won" if op == "won_after" else "lost"
            moment = start_of(value["date"])
            return any(k == kind and c is not None and c >= moment for k, c in p.deals)
    raise AssertionError(rule)


def interacted(op: str, value: dict[str, Any], p: Person) -> bool:
    times = [
        at
        for channel, direction, at in p.interactions
        if value.get("channel", channel) == channel
        and value.get("direction", direction) == direction
    ]
    if op.startswith("count"):
        counted = sum(at >= start_of(value["since"]) for at in times)
        return counted >= value["count"] if op == "count_at_least" else counted <= value["count"]
    moment = start_of(value["date"])
    after = any(at >= moment for at in times)
    if op == "any_after":
        return after
    if op == "none_after":
        return not after
    return not after and any(at < moment for at in times)


async def test_random_trees_hold_exactly_who_python_says(
    client: Client, people: list[Person]
) -> None:
    rng = random.Random(7)
    checked = 0
    for _ in range(150):
        rules = random_tree(rng)
        response = await client.post(
            "/api/v1/segments/preview", json={"rules": rules, "limit": 100}, headers=AUTH
        )
        assert response.status == 200, await response.text()
        body = await response.json()
        expected = sorted(p.id for p in people if not p.merged and holds(rules, p))
        got = sorted(member["id"] for member in body["sample"])
        assert (body["count"], got) == (len(expected), expected), rules
        checked += bool(expected) and len(expected) < len(people) - 5
    assert checked > 30  # most trees split the base, so a wrong set would show
