"""A campaign's rows in the one outbox: the conditions under which they may be claimed.

Consent is checked when a message is *claimed*, not only when the list was
frozen: an unsubscribe, a STOP or a hard bounce recorded a second before a
message's turn stops it. The rule is ``domain.consent.refusal`` said in SQL,
so the dispatcher's claim statement applies it to the very rows it takes.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import ColumnElement, and_, exists, not_, or_, select

from commhub.domain.campaigns import CampaignState
from commhub.domain.consent import Purpose
from commhub.models import Campaign, CampaignRecipient, Consent, Outbox, Suppression

WITHHELD: Final = "withheld"
"""Outbox state of a campaign message the person may no longer get."""
CANCELLED: Final = "cancelled"
"""Outbox state of a campaign message its campaign's cancellation stopped."""
COMPLAINED: Final = "complained"
"""Outbox state of a sent message its recipient reported as spam (a feedback-loop report)."""
WITHHELD_REASON: Final = "not sent: consent was withdrawn or the address opted out before its turn"


def campaign_running() -> ColumnElement[bool]:
    """An outbox row that is no campaign's, or whose campaign is running (not paused)."""
    return or_(
        Outbox.campaign_id.is_(None),
        exists(
            select(Campaign.id).where(
                Campaign.id == Outbox.campaign_id, Campaign.state == CampaignState.RUNNING.value
            )
        ),
    )


def consent_holds() -> ColumnElement[bool]:
    """An outbox row that is no campaign's, or whose recipient may still get it now."""
    # Nested two deep in an UPDATE of the outbox: correlation is said, not left to inference
    # (which would add a second, uncorrelated ``outbox`` to the inner FROM).
    answer = (
        select(Consent.id)
        .where(
            Consent.contact_id == Outbox.contact_id,
            Consent.channel == Outbox.channel,
            Consent.purpose == Campaign.purpose,
        )
        .correlate(Outbox, Campaign)
    )
    allowed = (
        select(CampaignRecipient.contact_id)
        .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
        .where(
            CampaignRecipient.campaign_id == Outbox.campaign_id,
            CampaignRecipient.contact_id == Outbox.contact_id,
            not_(
                exists(
                    select(Suppression.id)
                    .where(
                        Suppression.channel == Outbox.channel,
                        Suppression.address == CampaignRecipient.address,
                    )
                    .correlate(Outbox, CampaignRecipient)
                )
            ),
            or_(
                exists(answer.where(Consent.granted.is_(True))),
                and_(
                    Campaign.purpose == Purpose.SERVICE.value,
                    not_(exists(answer.where(Consent.granted.is_(False)))),
                ),
            ),
        )
    )
    return or_(Outbox.campaign_id.is_(None), exists(allowed))
