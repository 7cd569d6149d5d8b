"""commhub's e-mail adapter: a mailbox sends through SMTP and is read over IMAP.

Registered under the ``commhub.adapters`` entry point as ``email``; see
README.md beside this file for the settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commhub.channels import ChannelContext
from commhub_email.config import read_settings
from commhub_email.mailbox import MailboxChannel

__all__ = ["MailboxChannel", "adapter"]


def adapter(*, name: str, options: Mapping[str, Any], context: ChannelContext) -> MailboxChannel:
    """Build the channel for one ``[[channels]]`` entry with ``adapter = "email"``."""
    return MailboxChannel(
        name=name, settings=read_settings(name, options), cursors=context.email_cursors
    )
