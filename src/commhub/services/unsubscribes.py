"""Unsubscribing from a campaign's link: one click, no login, recorded with its evidence.

The link's token names one recipient of one campaign. The same token comes
back in an e-mail to the campaign's mailbox when a mail client follows the
``mailto:`` of List-Unsubscribe; the filing path then withdraws it in the
transaction that files that e-mail. Unsubscribing withdraws that person's
consent for the campaign's channel and purpose (the ledger says
"unsubscribe link", which campaign, how and when). Every
message to them not yet handed over is then withheld when its turn comes
(the claim checks consent), so nothing more goes out, from this campaign or
any other of that purpose. Doing it twice is harmless.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.contacts import ConsentChoice
from commhub.models import Campaign, CampaignRecipient, Consent
from commhub.services.database import Database
from commhub.services.errors import NotFound
from commhub.store import contacts as contact_store

log = logging.getLogger(__name__)

SOURCE: Final = "unsubscribe link"
MAILTO_SOURCE: Final = "unsubscribe e-mail"
MAILTO_SUBJECT: Final = re.compile(r"(?i)unsubscribe\s+([A-Za-z0-9_-]{10,64})")
MAX_TOKEN: Final = 64


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a link is about, as its page shows it (no personal data beyond a masked address)."""

    campaign: str
    channel: str
    purpose: str
    address: str
    """Masked: ``i***@example.com``, ``+7 *** ** 67``."""
    withdrawn: bool


async def look_up(db: Database, token: str) -> Subscription:
    """The subscription a link names; :class:`NotFound` for a token no campaign gave."""
    async with db() as session:
        recipient, campaign = await _recipient(session, token)
        answer = await session.scalar(
            select(Consent.granted).where(
                Consent.contact_id == recipient.contact_id,
                Consent.channel == recipient.channel,
                Consent.purpose == campaign.purpose,
            )
        )
        return Subscription(
            campaign=campaign.name,
            channel=recipient.channel,
            purpose=campaign.purpose,
            address=mask(recipient.address),
            withdrawn=answer is False,
        )


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    """Whose consent a token withdrew, for what: the card and the ledger name it."""

    contact_id: int
    campaign_id: int
    channel: str
    purpose: str


async def unsubscribe(db: Database, token: str, *, how: str) -> Subscription:
    """Withdraw the consent the link is about; commits. ``how``: what the request was."""
    async with db() as session:
        await withdraw(session, token, how=how, source=SOURCE)
        await session.commit()
    return await look_up(db, token)


async def withdraw(session: AsyncSession, token: str, *, how: str, source: str) -> Unsubscribed:
    """Withdraw the consent a token is about, in the caller's transaction; no commit.

    :class:`NotFound` for a token no campaign gave, before anything is written.
    """
    recipient, campaign = await _recipient(session, token)
    await contact_store.record_consents(
        session,
        recipient.contact_id,
        [ConsentChoice(recipient.channel, campaign.purpose, False)],
        source,
        evidence=f"campaign {campaign.id} ({campaign.name}), {how}",
    )
    return Unsubscribed(recipient.contact_id, campaign.id, recipient.channel, campaign.purpose)


async def unsubscribe_by_mail(
    session: AsyncSession, subject: str, *, how: str
) -> Unsubscribed | None:
    """An e-mail whose subject is ``unsubscribe TOKEN`` (the List-Unsubscribe mailto) unsubscribes.

    Campaign e-mails name their mailbox and this subject in List-Unsubscribe
    (RFC 2369 §3.2), so a mail client's "unsubscribe" writes it for the
    person. Runs in the filing transaction of that e-mail. Any other subject,
    or a token no campaign gave, changes nothing (``None``): the e-mail is
    then an ordinary message.
    """
    match = MAILTO_SUBJECT.fullmatch(subject.strip())
    if match is None:
        return None
    try:
        return await withdraw(session, match.group(1), how=how, source=MAILTO_SOURCE)
    except NotFound:
        log.info("an unsubscribe e-mail with a token no campaign gave: an ordinary message")
        return None


async def _recipient(session: AsyncSession, token: str) -> tuple[CampaignRecipient, Campaign]:
    if not token or len(token) > MAX_TOKEN:
        raise NotFound("unsubscribe link", "")
    row = (
        await session.execute(
            select(CampaignRecipient, Campaign)
            .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
            .where(CampaignRecipient.token == token)
        )
    ).first()
    if row is None:
        raise NotFound("unsubscribe link", "")
    return row[0], row[1]


def mask(address: str) -> str:
    """Enough of an address for a person to know it is theirs, not enough to harvest it."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{address[:3]} *** {address[-2:]}" if len(address) > 5 else "***"
