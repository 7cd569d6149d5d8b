"""Identify: "who is this address?" — the lookup behind screen pop, inbound SMS and mail."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain import phones
from commhub.domain.contacts import ContactView
from commhub.domain.emails import EmailError, looks_like_email, normalize_email
from commhub.services.database import Database
from commhub.store import contact_points
from commhub.store import contacts as contact_store


class Verdict(StrEnum):
    MATCH = "match"
    AMBIGUOUS = "ambiguous"
    UNKNOWN = "unknown"
    NOT_A_CUSTOMER = "not_a_customer"
    """An internal extension, a withheld number or text that is no address."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The answer: the verdict, the address in normal form, and the contacts it points to."""

    address: str
    verdict: Verdict
    kind: str
    normalized: str | None = None
    reason: str = ""
    contact_ids: list[int] = field(default_factory=list)


async def identify(session: AsyncSession, address: str, *, region: str) -> Identity:
    """Find the contact(s) behind ``address`` (a phone in any format or an e-mail).

    ``region`` reads numbers without a country code: the hub's default or the
    channel's own. One indexed query; never guesses between two contacts.
    """
    if looks_like_email(address):
        return await _identify_email(session, address)
    query = phones.read_number(address, region)
    if not query.searchable or query.match_key is None:
        return Identity(
            address=address,
            verdict=Verdict.NOT_A_CUSTOMER,
            kind=contact_points.PHONE,
            reason=query.kind.value,
        )
    candidates = await contact_points.phone_candidates(session, query.match_key)
    return _verdict(address, contact_points.PHONE, query.e164, phones.decide(query, candidates))


async def _identify_email(session: AsyncSession, address: str) -> Identity:
    try:
        normalized = normalize_email(address)
    except EmailError as exc:
        return Identity(
            address=address,
            verdict=Verdict.NOT_A_CUSTOMER,
            kind=contact_points.EMAIL,
            reason=str(exc),
        )
    owners = await contact_points.email_owners(session, normalized)
    return _verdict(address, contact_points.EMAIL, normalized, owners)


def _verdict(address: str, kind: str, normalized: str | None, ids: list[int]) -> Identity:
    verdict = Verdict.UNKNOWN if not ids else Verdict.MATCH if len(ids) == 1 else Verdict.AMBIGUOUS
    return Identity(
        address=address, verdict=verdict, kind=kind, normalized=normalized, contact_ids=ids
    )


async def who_is(db: Database, address: str, *, region: str) -> tuple[Identity, list[ContactView]]:
    """:func:`identify` with the cards it points to, for people and integrations asking."""
    async with db() as session:
        found = await identify(session, address, region=region)
        return found, await contact_store.load_many(session, found.contact_ids)
