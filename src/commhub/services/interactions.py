"""Recording interactions: the one place a call, SMS, e-mail or note lands on a card."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.interactions import NewInteraction
from commhub.domain.roles import Permission, allows
from commhub.models import Contact, Interaction, User
from commhub.services.database import Database
from commhub.services.errors import Forbidden, InvalidInput
from commhub.services.identify import Verdict, identify
from commhub.services.users import Principal
from commhub.store import interactions as store


async def record_interaction(
    session: AsyncSession, new: NewInteraction, *, region: str
) -> tuple[Interaction, bool]:
    """Log ``new`` once, on the card of the contact its counterpart address belongs to.

    If the event names no contact, the counterpart address is identified; an
    ambiguous or unknown address leaves the interaction unmatched (visible in
    the log) rather than guessed. Replays return the first row unchanged.
    Commits; returns the row and whether it is new.
    """
    if new.contact_id is None and new.counterpart_address:
        found = await identify(session, new.counterpart_address, region=region)
        if found.verdict is Verdict.MATCH:
            new = replace(new, contact_id=found.contact_ids[0])
    row, created = await store.record(session, new)
    await session.commit()
    return row, created


async def record_reported_interaction(
    db: Database, new: NewInteraction, *, caller: Principal, region: str
) -> tuple[Interaction, bool]:
    """Log what a person or another system reports, in the caller's name unless they may
    name someone else.

    An operator names only themselves as ``operator_id`` (or nobody, for a
    queue's call or a mail no one handled): another person's id is refused, so
    nobody fills a colleague's results. Ids that name no contact or user are
    refused by field rather than left to the database's foreign keys.
    """
    if (
        not allows(caller.role, Permission.INTERACTIONS_FOR_OTHERS)
        and new.operator_id is not None
        and new.operator_id != caller.user_id
    ):
        raise Forbidden("operator_id", "an operator records only their own interactions")
    async with db() as session:
        await _check_names(session, new)
        return await record_interaction(session, new, region=region)


async def _check_names(session: AsyncSession, new: NewInteraction) -> None:
    """Refuse, by field, a contact or user id that names nobody (or a merged contact)."""
    if new.contact_id is not None:
        contact = await session.get(Contact, new.contact_id)
        if contact is None:
            raise InvalidInput("contact_id", f"there is no contact {new.contact_id}")
        if contact.merged_into_id is not None:
            raise InvalidInput(
                "contact_id",
                f"contact {new.contact_id} was merged into {contact.merged_into_id}",
            )
    if new.operator_id is not None and await session.get(User, new.operator_id) is None:
        raise InvalidInput("operator_id", f"there is no user {new.operator_id}")
