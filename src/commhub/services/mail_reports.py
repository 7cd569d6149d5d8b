"""What machines report about mail we sent — bounces and complaints — applied as they are filed.

A hard bounce marks the message it reports on ``bounced`` and suppresses
the dead address. A complaint (a feedback-loop report, RFC 5965) says the
person does not want our mail: their e-mail consent for the purpose of what
they got (the campaign's, else marketing) is withdrawn in the ledger with
the report as evidence, their address goes on the suppression list, and
the message's outbox row becomes ``complained`` so a campaign's results and
its auto-pause count it. Every message to them still queued is then
withheld when its turn comes (the claim checks consent and suppression).
Nothing here commits: the report, its card entry and its effects are one
transaction of the filing step.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.domain.bounces import Bounce
from commhub.domain.complaints import Complaint
from commhub.domain.consent import Purpose
from commhub.domain.contacts import ConsentChoice
from commhub.domain.emails import EmailError, normalize_email
from commhub.domain.interactions import Direction, Medium, Status
from commhub.models import Campaign, Interaction, Outbox
from commhub.services.counterparts import contact_for
from commhub.store import contacts as contact_store
from commhub.store import emails as store
from commhub.store import suppressions
from commhub.store.campaign_rows import COMPLAINED

OUTBOUND_OPEN: Final = ("queued", "sent", "failed")
"""Statuses a bounce may replace (a failed send that later bounces is still a bounce)."""
BOUNCED: Final = "bounced"
COMPLAINT_SOURCE: Final = "complaint"
"""The consent ledger's source for a consent a feedback-loop report withdrew."""


async def apply_bounce(session: AsyncSession, bounce: Bounce, key: str) -> int | None:
    """Mark the message the bounce reports on; suppress addresses that failed for good.

    Returns the contact whose card the bounce goes on (the original's), if known.
    """
    for recipient in bounce.recipients:
        if recipient.permanent:
            reason = " ".join(filter(None, (recipient.status, recipient.reason))) or "hard bounce"
            await suppressions.suppress(
                session, Medium.EMAIL, recipient.address, reason=reason, source=f"bounce {key}"
            )
    row = await _original(session, bounce.original_message_id)
    if row is None:
        return None
    if bounce.permanent and row.status in OUTBOUND_OPEN:
        row.status = Status.BOUNCED.value
        row.extra = {**row.extra, "bounce": bounce.reason or "undeliverable", "bounced_by": key}
        outbox = await session.scalar(select(Outbox).where(Outbox.interaction_id == row.id))
        if outbox is not None:
            outbox.state = BOUNCED
            outbox.last_error = bounce.reason or "undeliverable"
    return row.contact_id


async def apply_complaint(
    session: AsyncSession, complaint: Complaint, key: str, *, region: str
) -> int | None:
    """Withdraw, suppress and mark what ``complaint`` is about.

    The original is found by its Message-ID; a report whose original is
    gone or unknown still acts on the recipient it names, if unredacted.
    Returns the contact whose card the report goes on.
    """
    row = await _original(session, complaint.original_message_id)
    purpose = Purpose.MARKETING.value
    campaign = ""
    if row is not None:
        contact_id, address = row.contact_id, row.to_address
        if row.campaign_id is not None:
            found = await session.get(Campaign, row.campaign_id)
            if found is not None:
                purpose, campaign = found.purpose, f", campaign {found.id} ({found.name})"
    else:
        address = _normalized(complaint.recipient)
        contact_id = None
        if address:
            contact_id = (
                await contact_for(session, address, region=region, create=False)
            ).contact_id
    about = complaint.original_message_id or "not named"
    by = complaint.reporter or "a feedback loop"
    evidence = f"{complaint.feedback_type} report <{key}> from {by} on message <{about}>"
    if row is not None:
        row.extra = {**row.extra, "complaint": complaint.feedback_type, "complained_by": key}
        outbox = await session.scalar(select(Outbox).where(Outbox.interaction_id == row.id))
        if outbox is not None:
            outbox.state = COMPLAINED
            outbox.last_error = f"the recipient reported it as {complaint.feedback_type}"
    if address:
        await suppressions.suppress(
            session,
            Medium.EMAIL,
            address,
            reason=f"complaint: {complaint.feedback_type}",
            source=f"complaint {key}"[:200],
        )
    if contact_id is not None:
        await contact_store.record_consents(
            session,
            contact_id,
            [ConsentChoice(Medium.EMAIL.value, purpose, False)],
            COMPLAINT_SOURCE,
            evidence=evidence + campaign,
        )
    return contact_id


async def _original(session: AsyncSession, message_id: str) -> Interaction | None:
    """The message we sent with this Message-ID, if it is ours and here."""
    if not message_id:
        return None
    originals = await store.by_message_ids(session, [message_id])
    if not originals:
        return None
    row = await session.get(Interaction, originals[0].interaction_id)
    if row is None or row.direction != Direction.OUTBOUND.value:
        return None
    return row


def _normalized(address: str) -> str:
    try:
        return normalize_email(address) if address else ""
    except EmailError:
        return ""
