"""Roles and what each may do: the single table every endpoint is checked against."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Role(StrEnum):
    OPERATOR = "operator"
    MARKETER = "marketer"
    MANAGER = "manager"
    ADMIN = "admin"


class Permission(StrEnum):
    """One verb per thing a person can do; endpoints name exactly one."""

    SESSION = "session"
    """Any logged-in user: see oneself, log out."""
    CONTACTS_READ = "contacts.read"
    CONTACTS_WRITE = "contacts.write"
    CONTACTS_MERGE = "contacts.merge"
    CONTACTS_IMPORT = "contacts.import"
    IDENTIFY = "identify"
    INTERACTIONS_WRITE = "interactions.write"
    INTERACTIONS_FOR_OTHERS = "interactions.for_others"
    """Record an interaction in another person's name (an operator records only their own)."""
    INTERACTIONS_LOG = "interactions.log"
    """Read every interaction: the log, filtered."""
    INTERACTIONS_EXPORT = "interactions.export"
    """Download the filtered log as CSV or XLSX."""
    TEAM_RESULTS = "team.results"
    """See every operator's results: the dashboard."""
    CALLS = "calls"
    """Place calls (click-to-call), see and dismiss missed calls."""
    CALLS_WATCH = "calls.watch"
    """See every call in progress, on the live feed and in the live view."""
    EMAIL_SEND = "email.send"
    EMAIL_TRIAGE = "email.triage"
    """Assign mail from senders on no card to a contact, or set it aside."""
    SMS_SEND = "sms.send"
    MAIL_FAILURES = "mail.failures"
    """Read messages that could not be filed, raw."""
    SUPPRESSIONS = "suppressions"
    """See and lift the addresses no message may go to."""
    OUTBOX_SETTLE = "outbox.settle"
    """See messages a crash left in doubt (may have been sent) and resend or dismiss them."""
    CHANNELS_VIEW = "channels.view"
    """See whether the PBXs, mailboxes and gateways are connected."""
    DEALS = "deals"
    """Work on deals: one's own and those of contacts one owns (with ``deals.all``, every
    deal), their stages, invoices and payments, and what is owed on them."""
    DEALS_ALL = "deals.all"
    """See and change every deal, give deals to anyone, change many at once."""
    FUNNEL = "funnel"
    """The team's funnel report and start page figures."""
    PIPELINES = "pipelines"
    """Set up pipelines, their stages and the rules that open deals."""
    SEGMENTS = "segments"
    """Build and save segments and static lists of contacts."""
    TEMPLATES = "templates"
    """Write the message templates campaigns send."""
    CAMPAIGNS = "campaigns"
    """Create campaigns and run them: start, pause, resume, cancel."""
    CAMPAIGN_RESULTS = "campaigns.results"
    """See campaigns and their results, down to each recipient."""
    TOKENS_MANAGE = "tokens.manage"
    USERS_MANAGE = "users.manage"


_EVERYONE: Final = frozenset({Permission.SESSION, Permission.CONTACTS_READ, Permission.IDENTIFY})

ROLE_PERMISSIONS: Final[dict[Role, frozenset[Permission]]] = {
    Role.OPERATOR: _EVERYONE
    | {
        Permission.CONTACTS_WRITE,
        Permission.INTERACTIONS_WRITE,
        Permission.CALLS,
        Permission.EMAIL_SEND,
        Permission.EMAIL_TRIAGE,
        Permission.SMS_SEND,
        Permission.DEALS,
    },
    Role.MARKETER: _EVERYONE
    | {
        Permission.INTERACTIONS_LOG,
        Permission.SEGMENTS,
        Permission.TEMPLATES,
        Permission.CAMPAIGNS,
        Permission.CAMPAIGN_RESULTS,
    },
    Role.MANAGER: _EVERYONE
    | {
        Permission.CONTACTS_WRITE,
        Permission.CONTACTS_MERGE,
        Permission.CONTACTS_IMPORT,
        Permission.INTERACTIONS_WRITE,
        Permission.INTERACTIONS_FOR_OTHERS,
        Permission.INTERACTIONS_LOG,
        Permission.INTERACTIONS_EXPORT,
        Permission.TEAM_RESULTS,
        Permission.TOKENS_MANAGE,
        Permission.CALLS,
        Permission.CALLS_WATCH,
        Permission.CHANNELS_VIEW,
        Permission.EMAIL_SEND,
        Permission.EMAIL_TRIAGE,
        Permission.SMS_SEND,
        Permission.SUPPRESSIONS,
        Permission.OUTBOX_SETTLE,
        Permission.DEALS,
        Permission.DEALS_ALL,
        Permission.FUNNEL,
        Permission.SEGMENTS,
        Permission.CAMPAIGN_RESULTS,
    },
    Role.ADMIN: frozenset(Permission),
}


def allows(role: Role, permission: Permission) -> bool:
    """Whether ``role`` may do ``permission``; anything not granted is denied."""
    return permission in ROLE_PERMISSIONS.get(role, frozenset())
