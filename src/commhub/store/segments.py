"""A segment's rule tree as SQL: one condition on ``contacts`` per node, the same on both databases.

A condition on another table is the set of contacts it holds —
``contacts.id IN (SELECT contact_id FROM … WHERE …)`` — which the database
reads once per count from that table's index (the interactions' segment index
for interaction conditions), instead of one correlated lookup per contact; an
``any`` group's sets become one ``IN`` over their ``UNION ALL``. The sets never
hold NULL, so ``NOT`` and ``NOT IN`` mean "not in the set". A tree of any
shape stays one statement. Merged-away contacts are never members.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import CompoundSelect, FromClause, Subquery

from commhub.domain.segments import Condition, Field, Group, Node, read_rules
from commhub.models import (
    Company,
    Consent,
    Contact,
    ContactPoint,
    ContactTag,
    Deal,
    Interaction,
    MissedCall,
    Outbox,
    Segment,
    SegmentMember,
    Stage,
    Tag,
    utcnow,
)
from commhub.store.dialect import contains_text, unicode_lower


def members(rules: Node) -> Select[Any]:
    """The ids of the contacts the tree holds now (not merged away)."""
    tree = _Tree()
    test = tree.condition(rules, top=True)
    source: FromClause = Contact.__table__
    for found in tree.joined:
        source = source.outerjoin(found, found.c[0] == Contact.id)
    return select(Contact.id).select_from(source).where(Contact.merged_into_id.is_(None), test)


def listed(segment_id: int) -> Select[Any]:
    """The ids of a static list's contacts (not merged away)."""
    return (
        select(SegmentMember.contact_id)
        .join(Contact, Contact.id == SegmentMember.contact_id)
        .where(SegmentMember.segment_id == segment_id, Contact.merged_into_id.is_(None))
    )


def of_segment(segment: Segment) -> Select[Any]:
    """A saved segment's members: its rules, or its list."""
    if segment.kind == "static" or segment.rules is None:
        return listed(segment.id)
    return members(read_rules(segment.rules))


async def count(session: AsyncSession, chosen: Select[Any]) -> int:
    found = await session.scalar(select(func.count()).select_from(chosen.subquery()))
    return int(found or 0)


async def sample(session: AsyncSession, chosen: Select[Any], limit: int) -> list[Any]:
    """The first ``limit`` members by id, with their name, company, first phone and e-mail."""
    ids = chosen.order_by(None).subquery()
    first_point = (
        select(ContactPoint.value)
        .where(ContactPoint.contact_id == Contact.id)
        .order_by(ContactPoint.id)
        .limit(1)
    )
    rows = await session.execute(
        select(
            Contact.id,
            Contact.name,
            Company.name.label("company"),
            first_point.where(ContactPoint.kind == "phone").scalar_subquery().label("phone"),
            first_point.where(ContactPoint.kind == "email").scalar_subquery().label("email"),
        )
        .join(ids, ids.c[0] == Contact.id)
        .outerjoin(Company, Company.id == Contact.company_id)
        .order_by(Contact.id)
        .limit(limit)
    )
    return list(rows)


class _Tree:
    """One tree's SQL: its conditions, and the sets it joins to ``contacts``.

    A set on the path of ``all`` groups from the root (``top``) is ``contacts.id
    IN (set)``: both databases start from the set or probe it. Anywhere else —
    under ``any`` or ``not``, and every "not in" — the set is LEFT JOINed once
    (distinct contact ids) and tested for NULL, because PostgreSQL runs an ``IN``
    there as a subplan that, when the set is larger than its hash memory, rereads
    the whole set for every contact; a join is hashed (or an anti-join) at any size.
    """

    def __init__(self) -> None:
        self.joined: list[Subquery] = []

    def condition(self, node: Node, *, top: bool) -> ColumnElement[bool]:
        if isinstance(node, Group):
            if node.kind == "not":
                return not_(self.condition(node.children[0], top=False))
            if node.kind == "all":
                return and_(true(), *(self.condition(c, top=top) for c in node.children))
            if len(node.children) == 1:
                return self.condition(node.children[0], top=top)
            # Siblings that are sets of contacts become one set: one test, not one per set.
            sets = [found for child in node.children if (found := contacts_in(child)) is not None]
            tests = [
                self.condition(child, top=False)
                for child in node.children
                if contacts_in(child) is None
            ]
            if sets:
                # Only sets: the group is one set, as good as a condition where it stands.
                merged = sets[0] if len(sets) == 1 else union(*sets)
                tests.append(self.within(merged, top=top and not tests))
            return or_(false(), *tests)
        found = contacts_in(node)
        if found is not None:
            return self.within(found, top=top)
        if node.field in _NOT_SETS:
            negative: ColumnElement[bool] = _NOT_SETS[node.field](node, self)
            return negative
        test: ColumnElement[bool] = _TESTS[node.field](node)
        return test

    def within(self, found: Select[Any] | CompoundSelect[Any], *, top: bool) -> ColumnElement[bool]:
        if top:
            return Contact.id.in_(found)
        return self.join(found).is_not(None)

    def outside(self, found: Select[Any]) -> ColumnElement[bool]:
        return self.join(found).is_(None)

    def join(self, found: Select[Any] | CompoundSelect[Any]) -> ColumnElement[Any]:
        if isinstance(found, Select):
            found = found.distinct()
        joined = found.subquery(f"in_set_{len(self.joined) + 1}")
        self.joined.append(joined)
        column: ColumnElement[Any] = joined.c[0]
        return column


def contacts_in(node: Node) -> Select[Any] | None:
    """The ids of the contacts a condition on another table holds (never NULL), if it is one."""
    if isinstance(node, Group) or node.field not in _SETS:
        return None
    found: Select[Any] | None = _SETS[node.field](node)
    return found


def _text(column: Any, node: Condition) -> ColumnElement[bool]:
    if node.op == "empty":
        return or_(column.is_(None), column == "")
    if node.op == "contains":
        return contains_text([column], node.text)
    needle = node.text.lower()
    if node.op == "equals":
        return unicode_lower(column) == needle
    return unicode_lower(column).startswith(needle, autoescape=True)


def _name(node: Condition) -> ColumnElement[bool]:
    return _text(Contact.name, node)


def _company(node: Condition) -> ColumnElement[bool]:
    if node.op == "empty":
        return Contact.company_id.is_(None)
    return exists(
        select(Company.id).where(Company.id == Contact.company_id, _text(Company.name, node))
    )


def _city(node: Condition) -> ColumnElement[bool]:
    return _text(Contact.extra["city"].as_string(), node)


def _extra(node: Condition) -> ColumnElement[bool]:
    return _text(Contact.extra[node.key].as_string(), node)


def _time_zone(node: Condition) -> ColumnElement[bool]:
    if node.op == "empty":
        return Contact.time_zone.is_(None)
    return Contact.time_zone == node.text


def _owner(node: Condition) -> ColumnElement[bool]:
    return Contact.owner_id.is_(None) if node.op == "empty" else Contact.owner_id == node.number


def _created(node: Condition) -> ColumnElement[bool]:
    if node.op == "within_days":
        return Contact.created_at >= utcnow() - timedelta(days=node.number or 0)
    assert node.moment is not None
    return (
        Contact.created_at < node.moment
        if node.op == "before"
        else Contact.created_at >= node.moment
    )


def _tag(node: Condition) -> Select[Any]:
    return (
        select(ContactTag.contact_id)
        .join(Tag, Tag.id == ContactTag.tag_id)
        .where(Tag.name == node.text)
    )


def _consent(node: Condition) -> Select[Any] | None:
    if node.op == "none":
        return None
    return select(Consent.contact_id).where(
        Consent.channel == node.channel,
        Consent.purpose == node.purpose,
        Consent.granted.is_(node.op == "granted"),
    )


def _no_consent(node: Condition, tree: _Tree) -> ColumnElement[bool]:
    answered = select(Consent.contact_id).where(
        Consent.channel == node.channel, Consent.purpose == node.purpose
    )
    return tree.outside(answered)


def _interactions(node: Condition) -> Select[Any]:
    """The contacts' interactions the condition looks at, by the segments' covering index."""
    query = select(Interaction.contact_id).where(Interaction.contact_id.is_not(None))
    if node.channel:
        query = query.where(Interaction.channel == node.channel)
    else:
        query = query.where(Interaction.channel.in_(("call", "sms", "email")))
    if node.direction:
        query = query.where(Interaction.direction == node.direction)
    return query


def _counted(node: Condition, more_than: int) -> Select[Any]:
    """Contacts with more than ``more_than`` of the interactions since ``node.since``."""
    assert node.since is not None
    return (
        _interactions(node)
        .where(Interaction.occurred_at >= node.since)
        .group_by(Interaction.contact_id)
        .having(func.count() > more_than)
    )


def _interaction(node: Condition) -> Select[Any] | None:
    """The positive forms as a set of contacts; the others are :func:`_interaction_test`."""
    if node.op == "count_at_least":
        assert node.number is not None
        return _counted(node, node.number - 1) if node.number > 0 else None
    if node.op == "any_after":
        return _interactions(node).where(Interaction.occurred_at >= node.moment)
    return None


def _interaction_test(node: Condition, tree: _Tree) -> ColumnElement[bool]:
    """The forms that are not a plain set (:func:`_interaction` is ``None`` for them)."""
    if node.op == "count_at_least":
        return true()  # at least none
    if node.op == "count_at_most":
        assert node.number is not None
        return tree.outside(_counted(node, node.number))
    assert node.moment is not None
    after = tree.outside(_interactions(node).where(Interaction.occurred_at >= node.moment))
    if node.op == "none_after":
        return after
    # last_before: something before the date, nothing since
    before = _interactions(node).where(Interaction.occurred_at < node.moment)
    return and_(tree.within(before, top=False), after)


def _missed(node: Condition) -> Select[Any]:
    assert node.moment is not None
    return select(MissedCall.contact_id).where(
        MissedCall.contact_id.is_not(None), MissedCall.occurred_at >= node.moment
    )


def _deal(node: Condition) -> Select[Any]:
    query = select(Deal.contact_id).where(Deal.contact_id.is_not(None))
    if node.pipeline_id is not None:
        query = query.where(Deal.pipeline_id == node.pipeline_id)
    if node.stage_id is not None:
        query = query.where(Deal.stage_id == node.stage_id)
    if node.amount_at_least:
        query = query.where(Deal.amount >= Decimal(node.amount_at_least))
    if node.op == "open":
        query = query.where(Deal.closed_at.is_(None))
    elif node.op in ("won_after", "lost_after"):
        kind = "won" if node.op == "won_after" else "lost"
        query = query.join(Stage, Stage.id == Deal.stage_id).where(
            Stage.kind == kind, Deal.closed_at >= node.moment
        )
    return query


def _import(node: Condition) -> ColumnElement[bool]:
    return Contact.import_id == node.number


def _campaign(node: Condition) -> Select[Any]:
    if node.op == "replied":
        return select(Interaction.contact_id).where(
            Interaction.campaign_id == node.number,
            Interaction.contact_id.is_not(None),
            Interaction.direction == "in",
        )
    states = ("sent", "dismissed") if node.op == "received" else ("bounced", "failed")
    return select(Outbox.contact_id).where(
        Outbox.campaign_id == node.number,
        Outbox.contact_id.is_not(None),
        Outbox.state.in_(states),
    )


def _list(node: Condition) -> Select[Any]:
    return select(SegmentMember.contact_id).where(SegmentMember.segment_id == node.number)


_SETS: dict[Field, Any] = {
    Field.TAG: _tag,
    Field.CONSENT: _consent,
    Field.INTERACTION: _interaction,
    Field.MISSED_CALL: _missed,
    Field.DEAL: _deal,
    Field.CAMPAIGN: _campaign,
    Field.LIST: _list,
}
"""Conditions on another table, as the set of contacts they hold (``None``: a negative form)."""

_TESTS: dict[Field, Any] = {
    Field.NAME: _name,
    Field.COMPANY: _company,
    Field.CITY: _city,
    Field.EXTRA: _extra,
    Field.TIME_ZONE: _time_zone,
    Field.OWNER: _owner,
    Field.CREATED: _created,
    Field.IMPORT: _import,
}
"""Conditions on the contact's own row."""

_NOT_SETS: dict[Field, Any] = {
    Field.CONSENT: _no_consent,
    Field.INTERACTION: _interaction_test,
}
"""The forms of conditions on another table that are not a set of contacts ("none since")."""
