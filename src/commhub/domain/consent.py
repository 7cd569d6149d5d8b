"""Whether a person may get a message on a channel for a purpose: the one rule.

Marketing (advertising) needs consent recorded beforehand (38-FZ art. 18;
GDPR/PECR alike); a service message goes unless the person said no. An
address on the channel's suppression list (a hard bounce, STOP) gets
nothing at all. The store states the same rule in SQL for the moment a
message is claimed (``store.campaign_rows.consent_holds``); keep the two equal.
"""

from __future__ import annotations

from enum import StrEnum


class Purpose(StrEnum):
    MARKETING = "marketing"
    """Advertising: sent only to people who agreed (38-FZ art. 18), with an unsubscribe link."""
    SERVICE = "service"
    """About something the person already has (an invoice, an appointment): sent unless they
    said no."""


class Refusal(StrEnum):
    SUPPRESSED = "suppressed"
    WITHDRAWN = "withdrawn"
    NO_CONSENT = "no_consent"


def refusal(purpose: str, answer: bool | None, *, suppressed: bool) -> Refusal | None:
    """Why nothing may go (``None``: it may). ``answer`` is the consent in force, if any."""
    if suppressed:
        return Refusal.SUPPRESSED
    if answer is False:
        return Refusal.WITHDRAWN
    if answer is None and purpose != Purpose.SERVICE:
        return Refusal.NO_CONSENT
    return None
