"""The campaign form: what a marketer typed, as the draft the campaign service takes.

Every field is read as text and checked here first, so a value the service
could not take (a letter in the rate, a time that does not exist) comes back
next to its field in the user's language instead of as an error page. The
service's own refusals name a field too; their text is translated where the
catalog knows it, else the field's general message is shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Final
from zoneinfo import ZoneInfo

from commhub.domain.campaigns import CampaignChannel, Schedule
from commhub.domain.consent import Purpose
from commhub.domain.identifiers import parse_id
from commhub.models import Campaign
from commhub.services.campaigns import CampaignDraft
from commhub.web.ui.forms import Form
from commhub.web.ui.i18n import N_
from commhub.web.ui.render import translate

FIELDS: Final = (
    "name",
    "channel",
    "purpose",
    "segment_id",
    "email_template_id",
    "sms_template_id",
    "mailbox",
    "sms_gateway",
    "sms_sender",
    "schedule",
    "start_at",
    "window_from",
    "window_to",
    "rate",
    "bounce_limit",
    "complaint_limit",
)
"""The form's inputs, named as the draft's fields."""

FIELD_MESSAGES: Final = {
    "name": N_("Give the campaign a name (at most 200 characters)."),
    "channel": N_("Choose e-mail, SMS, or both."),
    "purpose": N_("Choose marketing or service."),
    "segment_id": N_("Choose one of the saved segments."),
    "email_template_id": N_("Choose one of the e-mail templates."),
    "sms_template_id": N_("Choose one of the SMS templates."),
    "mailbox": N_("Choose a mailbox this hub sends from."),
    "sms_gateway": N_("Choose an SMS gateway this hub sends through."),
    "sms_sender": N_("Choose one of the gateway's numbers."),
    "schedule": N_("Choose now or at a time."),
    "start_at": N_("Give the day and time it starts at."),
    "window_from": N_(
        "Give both hours, opening at 08:00 or later and closing by 22:00: "
        "messages never go at night."
    ),
    "rate": N_("Messages per second: more than 0, at most 1000."),
    "bounce_limit": N_("A percentage between 0 and 100."),
    "complaint_limit": N_("A percentage between 0 and 100."),
    "state": N_("The campaign changed meanwhile; look again."),
}
"""What a refused field's message says when the service's own words are not in the catalog."""

SERVICE_MESSAGES: Final = (
    N_("give the campaign a name"),
    N_("at most 200 characters"),
    N_("give both the opening and the closing time"),
    N_(
        "must open at 08:00 or later, close by 22:00 and be open a while: "
        "messages never go at night"
    ),
    N_("messages per second: more than 0, at most 1000"),
    N_("a percentage between 0 and 100"),
    N_("choose the segment it goes to"),
    N_("give the time it starts at"),
    N_("choose the email template it sends"),
    N_("choose the sms template it sends"),
    N_("choose a mailbox this hub sends from"),
    N_("choose an SMS gateway this hub sends through"),
)
"""The service's refusals the console shows in the user's language, word for word."""

WINDOW_FIELDS: Final = {"window": "window_from", "window_to": "window_from"}
"""Both hours of the window share one message, next to the first."""


class FormError(Exception):
    """A field's value is not one the form takes; ``message`` is English source text."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Choices:
    """What the form's lists offer: the saved segments, templates and this hub's senders."""

    segments: list[tuple[int, str]]
    email_templates: list[tuple[int, str]]
    sms_templates: list[tuple[int, str]]
    mailboxes: list[tuple[str, str]]
    """Name → the address it sends from."""
    sms_gateways: list[tuple[str, tuple[str, ...]]]


def draft_from(form: Form, zone: ZoneInfo) -> CampaignDraft:
    """The draft the form describes; raises :class:`FormError` naming the first bad field."""
    channel = _choice(form, "channel", CampaignChannel)
    return CampaignDraft(
        name=form.get("name", "").strip(),
        channel=CampaignChannel(channel),
        purpose=Purpose(_choice(form, "purpose", Purpose)),
        segment_id=_id(form, "segment_id"),
        email_template_id=_id(form, "email_template_id") if channel != "sms" else None,
        sms_template_id=_id(form, "sms_template_id") if channel != "email" else None,
        mailbox=_text(form, "mailbox") if channel != "sms" else None,
        sms_gateway=_text(form, "sms_gateway") if channel != "email" else None,
        sms_sender=_text(form, "sms_sender") if channel != "email" else None,
        schedule=Schedule(_choice(form, "schedule", Schedule)),
        start_at=_moment(form, "start_at", zone),
        window_from=_minutes(form, "window_from"),
        window_to=_minutes(form, "window_to"),
        rate=_number(form, "rate", default=None),
        bounce_limit=_number(form, "bounce_limit", default=5.0) or 0.0,
        complaint_limit=_number(form, "complaint_limit", default=0.1) or 0.0,
    )


def typed_from(campaign: Campaign, zone: ZoneInfo) -> Form:
    """A saved campaign as the form's text, for its edit page."""

    def number(value: float | None) -> str:
        return "" if value is None else f"{value:g}"

    return {
        "name": campaign.name,
        "channel": campaign.channel,
        "purpose": campaign.purpose,
        "segment_id": _shown(campaign.segment_id),
        "email_template_id": _shown(campaign.email_template_id),
        "sms_template_id": _shown(campaign.sms_template_id),
        "mailbox": campaign.mailbox or "",
        "sms_gateway": campaign.sms_gateway or "",
        "sms_sender": campaign.sms_sender or "",
        "schedule": campaign.schedule,
        "start_at": ""
        if campaign.start_at is None
        else campaign.start_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        "window_from": _clock(campaign.window_from),
        "window_to": _clock(campaign.window_to),
        "rate": number(campaign.rate),
        "bounce_limit": number(campaign.bounce_limit),
        "complaint_limit": number(campaign.complaint_limit),
    }


def changes_of(draft: CampaignDraft) -> dict[str, Any]:
    """Every field of the draft, as the service's edit takes them."""
    return {name: getattr(draft, name) for name in FIELDS}


def refusal(language: str, field: str, message: str) -> tuple[str, str]:
    """The field a refusal is shown at and its text in ``language``."""
    shown_at = WINDOW_FIELDS.get(field, field)
    if message in SERVICE_MESSAGES or message in FIELD_MESSAGES.values():
        return shown_at, translate(language, message)
    fallback = FIELD_MESSAGES.get(shown_at)
    if fallback is None or language == "en":
        return shown_at, message
    return shown_at, translate(language, fallback)


def _choice(form: Form, name: str, kind: Any) -> str:
    value = form.get(name, "").strip()
    default = {"channel": "email", "purpose": "marketing", "schedule": "now"}[name]
    value = value or default
    if value not in {member.value for member in kind}:
        raise FormError(name, FIELD_MESSAGES[name])
    return value


def _id(form: Form, name: str) -> int | None:
    value = form.get(name, "").strip()
    if not value:
        return None
    found = parse_id(value)
    if found is None:
        raise FormError(name, FIELD_MESSAGES[name])
    return found


def _text(form: Form, name: str) -> str | None:
    value = form.get(name, "").strip()
    if len(value) > 100:
        raise FormError(name, FIELD_MESSAGES[name])
    return value or None


def _moment(form: Form, name: str, zone: ZoneInfo) -> datetime | None:
    """A ``datetime-local`` value in the user's zone, as an aware moment."""
    value = form.get(name, "").strip()
    if not value:
        return None
    try:
        local = datetime.fromisoformat(value)
    except ValueError:
        raise FormError(name, N_("Give the day and time as the form shows them.")) from None
    if local.tzinfo is not None or not 2000 <= local.year <= 2200:
        raise FormError(name, N_("Give the day and time as the form shows them."))
    return local.replace(tzinfo=zone)


def _minutes(form: Form, name: str) -> int | None:
    """``HH:MM`` (or a whole hour) as minutes after midnight."""
    value = form.get(name, "").strip()
    if not value:
        return None
    try:
        clock = time.fromisoformat(value) if ":" in value else time(int(value))
    except ValueError:
        raise FormError("window_from", N_("Give the hours as HH:MM, for example 09:00.")) from None
    return clock.hour * 60 + clock.minute


def _number(form: Form, name: str, *, default: float | None) -> float | None:
    value = form.get(name, "").strip().replace(",", ".")
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise FormError(name, FIELD_MESSAGES[name]) from None
    if not math.isfinite(number):
        raise FormError(name, FIELD_MESSAGES[name])
    return number


def _shown(value: int | None) -> str:
    return "" if value is None else str(value)


def _clock(minutes: int | None) -> str:
    return "" if minutes is None else f"{minutes // 60:02d}:{minutes % 60:02d}"
