"""commhub's Asterisk adapter: calls from the AMI event stream to the client card.

Registered under the ``commhub.adapters`` entry point as ``asterisk``; see
README.md beside this file for the settings and the manager.conf user it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commhub.channels import ChannelContext
from commhub_asterisk.config import read_settings
from commhub_asterisk.link import AmiChannel

__all__ = ["AmiChannel", "adapter"]


def adapter(*, name: str, options: Mapping[str, Any], context: ChannelContext) -> AmiChannel:
    """Build the channel for one ``[[channels]]`` entry with ``adapter = "asterisk"``."""
    return AmiChannel(name=name, settings=read_settings(name, options), region=context.phone_region)
