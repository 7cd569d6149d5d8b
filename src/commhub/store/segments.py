"""A segment's rule tree as SQL: one condition on ``contacts`` per node, the same on both databases.

Every condition on another table is an ``EXISTS`` correlated on the contact,
answered by that table's index on ``contact_id`` (the card's index for
interactions), so a tree of any shape stays one statement the database can
plan. Merged-away contacts are never members.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

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
    return select(Contact.id).where(Contact.merged_into_id.is_(None), condition(rules))


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


def condition(node: Node) -> ColumnElement[bool]:
    if isinstance(node, Group):
        parts = [condition(child) for child in node.children]
        if node.kind == "not":
            return not_(parts[0])
        return and_(true(), *parts) if node.kind == "all" else or_(false(), *parts)
    found: ColumnElement[bool] = _CONDITIONS[node.field](node)
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


def _tag(node: Condition) -> ColumnElement[bool]:
    return exists(
        select(ContactTag.tag_id)
        .join(Tag, Tag.id == ContactTag.tag_id)
        .where(ContactTag.contact_id == Contact.id, Tag.name == node.text)
    )


def _consent(node: Condition) -> ColumnElement[bool]:
    answer = select(Consent.id).where(
        Consent.contact_id == Contact.id,
        Consent.channel == node.channel,
        Consent.purpose == node.purpose,
    )
    if node.op == "none":
        return not_(exists(answer))
    return exists(answer.where(Consent.granted.is_(node.op == "granted")))


def _interactions(node: Condition) -> Select[Any]:
    query = select(Interaction.id).where(Interaction.contact_id == Contact.id)
    if node.channel:
        query = query.where(Interaction.channel == node.channel)
    else:
        query = query.where(Interaction.channel.in_(("call", "sms", "email")))
    if node.direction:
        query = query.where(Interaction.direction == node.direction)
    return query


def _interaction(node: Condition) -> ColumnElement[bool]:
    query = _interactions(node)
    if node.op in ("count_at_least", "count_at_most"):
        assert node.since is not None and node.number is not None
        counted = (
            query.where(Interaction.occurred_at >= node.since)
            .with_only_columns(func.count(Interaction.id))
            .correlate(Contact)
            .scalar_subquery()
        )
        return counted >= node.number if node.op == "count_at_least" else counted <= node.number
    assert node.moment is not None
    after = exists(query.where(Interaction.occurred_at >= node.moment))
    if node.op == "any_after":
        return after
    if node.op == "none_after":
        return not_(after)
    # last_before: something before the date, nothing since
    return and_(exists(query.where(Interaction.occurred_at < node.moment)), not_(after))


def _missed(node: Condition) -> ColumnElement[bool]:
    assert node.moment is not None
    return exists(
        select(MissedCall.id).where(
            MissedCall.contact_id == Contact.id, MissedCall.occurred_at >= node.moment
        )
    )


def _deal(node: Condition) -> ColumnElement[bool]:
    query = select(Deal.id).where(Deal.contact_id == Contact.id)
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
    return exists(query)


def _import(node: Condition) -> ColumnElement[bool]:
    return Contact.import_id == node.number


def _campaign(node: Condition) -> ColumnElement[bool]:
    if node.op == "replied":
        return exists(
            select(Interaction.id).where(
                Interaction.campaign_id == node.number,
                Interaction.contact_id == Contact.id,
                Interaction.direction == "in",
            )
        )
    states = ("sent", "dismissed") if node.op == "received" else ("bounced", "failed")
    return exists(
        select(Outbox.id).where(
            Outbox.campaign_id == node.number,
            Outbox.contact_id == Contact.id,
            Outbox.state.in_(states),
        )
    )


def _list(node: Condition) -> ColumnElement[bool]:
    return exists(
        select(SegmentMember.contact_id).where(
            SegmentMember.segment_id == node.number, SegmentMember.contact_id == Contact.id
        )
    )


_CONDITIONS: dict[Field, Any] = {
    Field.NAME: _name,
    Field.COMPANY: _company,
    Field.CITY: _city,
    Field.EXTRA: _extra,
    Field.TIME_ZONE: _time_zone,
    Field.OWNER: _owner,
    Field.CREATED: _created,
    Field.TAG: _tag,
    Field.CONSENT: _consent,
    Field.INTERACTION: _interaction,
    Field.MISSED_CALL: _missed,
    Field.DEAL: _deal,
    Field.IMPORT: _import,
    Field.CAMPAIGN: _campaign,
    Field.LIST: _list,
}
