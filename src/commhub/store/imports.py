"""Import queries: batch lookups of existing points and set-based writes of whole batches.

Everything here works on a batch of rows at once with ``executemany`` (no
ORM object per row, rows as plain tuples): a million-row import is a few
hundred round trips per table, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Table, and_, bindparam, insert, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.contacts import name_key
from commhub.models import (
    Base,
    Company,
    Contact,
    ContactPoint,
    Import,
    Tag,
    UTCDateTime,
    utcnow,
)
from commhub.store.contact_points import EMAIL, PHONE
from commhub.store.dialect import upsert_insert, write_rows

IN_CHUNK: Final = 1000
"""Values per ``IN (…)`` list: far below SQLite's and asyncpg's parameter limits."""

companies: Table = Base.metadata.tables["companies"]
contacts: Table = Base.metadata.tables["contacts"]
points: Table = Base.metadata.tables["contact_points"]
tags: Table = Base.metadata.tables["tags"]
contact_tags: Table = Base.metadata.tables["contact_tags"]
consents: Table = Base.metadata.tables["consents"]
consent_events: Table = Base.metadata.tables["consent_events"]


@dataclass(slots=True)
class ContactState:
    """What a merge needs to know of an existing contact (filled in place, then written back)."""

    id: int
    name: str
    company_id: int | None
    extra: dict[str, Any]


async def point_owners(
    session: AsyncSession, phones: Iterable[str], emails: Iterable[str]
) -> dict[str, set[int]]:
    """Live (not merged-away) contacts holding each E.164 phone or normalised e-mail."""
    owners: dict[str, set[int]] = {}
    for kind, values in (
        (PHONE, list(dict.fromkeys(phones))),
        (EMAIL, list(dict.fromkeys(emails))),
    ):
        for chunk in _chunks(values):
            rows = await session.execute(
                select(ContactPoint.value, ContactPoint.contact_id)
                .join(Contact, Contact.id == ContactPoint.contact_id)
                .where(
                    ContactPoint.kind == kind,
                    ContactPoint.value.in_(chunk),
                    Contact.merged_into_id.is_(None),
                )
            )
            for value, contact_id in rows:
                owners.setdefault(value, set()).add(contact_id)
    return owners


async def company_ids(session: AsyncSession, names: dict[str, str]) -> dict[str, int]:
    """Ids of companies by ``name_key`` (``names`` maps key → display name); new ones created."""
    if not names:
        return {}
    now = utcnow()
    await session.execute(
        upsert_insert(session, companies).on_conflict_do_nothing(index_elements=["name_key"]),
        [{"name": name, "name_key": key, "created_at": now} for key, name in names.items()],
    )
    found: dict[str, int] = {}
    for chunk in _chunks(list(names)):
        rows = await session.execute(
            select(Company.name_key, Company.id).where(Company.name_key.in_(chunk))
        )
        found.update({key: ident for key, ident in rows})
    return found


CONTACT_KEYS: Final = ("name", "name_key", "company_id", "extra", "import_id")
"""The values of one new contact, in the order :func:`insert_contacts` takes them."""


async def insert_contacts(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> list[int]:
    """Insert contacts given as :data:`CONTACT_KEYS` tuples; returns their ids in input order."""
    if not rows:
        return []
    now = _batch_time()
    statement = insert(contacts).values(created_at=now, updated_at=now)
    if session.get_bind().dialect.name == "postgresql":
        # insertmanyvalues keeps RETURNING in parameter order on PostgreSQL.
        result = await session.execute(
            statement.returning(contacts.c.id, sort_by_parameter_order=True),
            [dict(zip(CONTACT_KEYS, row, strict=True)) for row in rows],
        )
        return [ident for (ident,) in result]
    # SQLite cannot promise RETURNING order for a multi-row INSERT, so SQLAlchemy
    # would run one statement per row. Instead: insert the first row alone; the
    # write lock it takes is held until commit, so no other writer can insert,
    # and the next ids are free (SQLite gives a new row max(rowid) + 1).
    first = await session.scalar(
        statement.returning(contacts.c.id), dict(zip(CONTACT_KEYS, rows[0], strict=True))
    )
    if first is None:  # pragma: no cover - an INSERT … RETURNING always returns its row
        raise RuntimeError("INSERT INTO contacts returned no id")
    ids = list(range(first, first + len(rows)))
    await write_rows(
        session,
        statement,
        contacts,
        ("id", *CONTACT_KEYS),
        [(ident, *row) for ident, row in zip(ids[1:], rows[1:], strict=True)],
    )
    return ids


async def add_points(session: AsyncSession, rows: Sequence[tuple[int, str, str, str]]) -> None:
    """Add ``(contact_id, kind, value, match_key)`` points; ones a contact has are skipped."""
    if not rows:
        return
    statement = upsert_insert(session, points).values(label="", created_at=_batch_time())
    await write_rows(
        session,
        statement.on_conflict_do_nothing(index_elements=["contact_id", "kind", "value"]),
        points,
        ("contact_id", "kind", "value", "match_key"),
        rows,
    )


async def add_tags(session: AsyncSession, pairs: Sequence[tuple[int, str]]) -> None:
    """Tag contacts: ``(contact_id, tag name)`` pairs; new tag names are created."""
    if not pairs:
        return
    names = list(dict.fromkeys(name for _, name in pairs))
    await session.execute(
        upsert_insert(session, tags).on_conflict_do_nothing(index_elements=["name"]),
        [{"name": name} for name in names],
    )
    ids: dict[str, int] = {}
    for chunk in _chunks(names):
        rows = await session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(chunk)))
        ids.update({name: ident for name, ident in rows})
    await write_rows(
        session,
        upsert_insert(session, contact_tags).on_conflict_do_nothing(
            index_elements=["contact_id", "tag_id"]
        ),
        contact_tags,
        ("contact_id", "tag_id"),
        [(contact_id, ids[name]) for contact_id, name in pairs],
    )


async def add_consents(
    session: AsyncSession, rows: Sequence[tuple[int, str, str, bool]], source: str
) -> None:
    """Record ``(contact_id, channel, purpose, granted)`` answers from a spreadsheet.

    A (channel, purpose) the contact has no record for is added. An existing
    record only changes from granted to refused: an old spreadsheet never
    re-opts-in someone who opted out through the hub, but its "no" is heeded.
    """
    if not rows:
        return
    now = _batch_time()
    await _ledger(session, rows, source, now)
    statement = upsert_insert(session, consents).values(source=source, recorded_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=["contact_id", "channel", "purpose"],
        set_={"granted": False, "source": source, "recorded_at": now},
        where=and_(consents.c.granted.is_(True), statement.excluded.granted.is_(False)),
    )
    await write_rows(
        session, statement, consents, ("contact_id", "channel", "purpose", "granted"), rows
    )


async def _ledger(
    session: AsyncSession,
    rows: Sequence[tuple[int, str, str, bool]],
    source: str,
    now: Any,
) -> None:
    """Write to the consent ledger the answers that will change what is in force (before the
    upsert, which tells no one what it changed): a first answer, or a "yes" turned "no"."""
    current: dict[tuple[int, str, str], bool] = {}
    for chunk in _chunks(list({row[0] for row in rows})):
        for contact_id, channel, purpose, granted in await session.execute(
            select(
                consents.c.contact_id, consents.c.channel, consents.c.purpose, consents.c.granted
            ).where(consents.c.contact_id.in_(chunk))
        ):
            current[(contact_id, channel, purpose)] = bool(granted)
    changes = []
    for contact_id, channel, purpose, granted in rows:
        before = current.get((contact_id, channel, purpose))
        if before is None or (before and not granted):
            current[(contact_id, channel, purpose)] = granted
            changes.append((contact_id, channel, purpose, granted))
    if changes:
        await write_rows(
            session,
            insert(consent_events).values(source=source, evidence="", recorded_at=now),
            consent_events,
            ("contact_id", "channel", "purpose", "granted"),
            changes,
        )


async def contact_states(session: AsyncSession, ids: Iterable[int]) -> dict[int, ContactState]:
    """Name, company and extra fields of the contacts a batch merges into."""
    found: dict[int, ContactState] = {}
    for chunk in _chunks(list(ids)):
        rows = await session.execute(
            select(Contact.id, Contact.name, Contact.company_id, Contact.extra).where(
                Contact.id.in_(chunk)
            )
        )
        for ident, name, company_id, extra in rows:
            found[ident] = ContactState(ident, name, company_id, dict(extra or {}))
    return found


async def update_contacts(session: AsyncSession, states: Sequence[ContactState]) -> None:
    """Write back merged contacts' name (and its key), company and extra fields."""
    if not states:
        return
    now = utcnow()
    await session.execute(
        update(contacts)
        .where(contacts.c.id == bindparam("target_id"))
        .values(
            name=bindparam("new_name"),
            name_key=bindparam("new_key"),
            company_id=bindparam("new_company"),
            extra=bindparam("new_extra", type_=contacts.c.extra.type),
            updated_at=bindparam("now", type_=contacts.c.updated_at.type),
        ),
        [
            {
                "target_id": s.id,
                "new_name": s.name,
                "new_key": name_key(s.name),
                "new_company": s.company_id,
                "new_extra": s.extra,
                "now": now,
            }
            for s in states
        ],
    )


async def get_import(session: AsyncSession, import_id: int) -> Import | None:
    return await session.get(Import, import_id)


async def record_progress(session: AsyncSession, import_id: int, **values: Any) -> None:
    """Update an import's counters/status (``rows_done=…, progress=…, status=…``)."""
    await session.execute(update(Import).where(Import.id == import_id).values(**values))


def _batch_time() -> Any:
    """Now, as one SQL literal shared by every row of a batch.

    Rendered into the statement once instead of bound and converted per row:
    with several timestamp columns per row that conversion was a large part
    of an import's CPU time. The text is the naive-UTC form ``UTCDateTime``
    stores, which both SQLite and PostgreSQL read as a timestamp.
    """
    now = utcnow().replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return literal_column(f"'{now}'", type_=UTCDateTime())


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]
