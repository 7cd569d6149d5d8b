"""Identify against a real store: the phone identity rules end to end."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.phones import parse_phone
from commhub.models import Contact, ContactPoint
from commhub.services.identify import Verdict, identify


async def _contact(session: AsyncSession, name: str, *numbers: str, region: str = "RU") -> int:
    contact = Contact(name=name, name_key=name.lower())
    session.add(contact)
    await session.flush()
    for number in numbers:
        phone = parse_phone(number, region)
        session.add(
            ContactPoint(
                contact_id=contact.id, kind="phone", value=phone.e164, match_key=phone.match_key
            )
        )
    await session.commit()
    return contact.id


async def test_russian_trunk_prefix_finds_e164_contact(session: AsyncSession) -> None:
    ivan = await _contact(session, "Ivan", "+7 916 123-45-67")
    for presented in ("89161234567", "8 (916) 123-45-67", "+79161234567", "810 7 916 1234567"):
        found = await identify(session, presented, region="RU")
        assert found.verdict is Verdict.MATCH, presented
        assert found.contact_ids == [ivan]


async def test_gb_number_without_country_code_on_ru_trunk_matches_by_key(
    session: AsyncSession,
) -> None:
    jane = await _contact(session, "Jane", "+44 20 7946 0958")
    found = await identify(session, "02079460958", region="RU")
    assert found.verdict is Verdict.MATCH
    assert found.contact_ids == [jane]


async def test_explicit_other_country_is_not_the_same_subscriber(session: AsyncSession) -> None:
    await _contact(session, "Ivan", "+7 916 123-45-67")
    found = await identify(session, "+49 916 1234567", region="RU")
    assert found.verdict is Verdict.UNKNOWN


async def test_shared_number_is_ambiguous_not_guessed(session: AsyncSession) -> None:
    a = await _contact(session, "Reception A", "+74951234567")
    b = await _contact(session, "Reception B", "84951234567")
    found = await identify(session, "8 495 123 45 67", region="RU")
    assert found.verdict is Verdict.AMBIGUOUS
    assert found.contact_ids == [a, b]


async def test_extension_and_withheld_never_match(session: AsyncSession) -> None:
    await _contact(session, "Ivan", "+7 916 123-45-67")
    for presented in ("201", "1001", "anonymous", "<unknown>", ""):
        found = await identify(session, presented, region="RU")
        assert found.verdict is Verdict.NOT_A_CUSTOMER, presented
        assert found.contact_ids == []


async def test_invalid_number_with_explicit_country_stays_in_that_country(
    session: AsyncSession,
) -> None:
    # Both numbers end in 234567890, the match key "+7 123 456 7890" also reads as.
    moscow = await _contact(session, "Moscow", "+7 923 456-78-90")
    await _contact(session, "London", "+44 7234 567890")
    found = await identify(session, "+7 123 456 7890", region="RU")
    assert (found.verdict, found.contact_ids) == (Verdict.MATCH, [moscow])
    nowhere = await identify(session, "+49 1 234567890", region="RU")
    assert (nowhere.verdict, nowhere.contact_ids) == (Verdict.UNKNOWN, [])
    no_country = await identify(session, "+999 1234 567890", region="RU")
    assert no_country.verdict is Verdict.NOT_A_CUSTOMER
