"""commhub's Twilio adapter: SMS out through Twilio's REST API, in and reported by its webhooks.

Registered under the ``commhub.adapters`` entry point as ``twilio``; see
README.md beside this file for the settings and the Twilio Console side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commhub.channels import ChannelContext
from commhub_twilio.config import read_settings
from commhub_twilio.gateway import TwilioGateway

__all__ = ["TwilioGateway", "adapter"]


def adapter(*, name: str, options: Mapping[str, Any], context: ChannelContext) -> TwilioGateway:
    """Build the channel for one ``[[channels]]`` entry with ``adapter = "twilio"``."""
    settings = read_settings(name, options, hub_public_url=context.public_url)
    return TwilioGateway(name=name, settings=settings)
