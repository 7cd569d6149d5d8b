"""commhub's Kannel adapter: SMS through a Kannel smsbox's sendsms, reports and MO over HTTP.

Registered under the ``commhub.adapters`` entry point as ``kannel``; see
README.md beside this file for the settings and the kannel.conf lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commhub.channels import ChannelContext
from commhub_kannel.config import read_settings
from commhub_kannel.gateway import KannelGateway

__all__ = ["KannelGateway", "adapter"]


def adapter(*, name: str, options: Mapping[str, Any], context: ChannelContext) -> KannelGateway:
    """Build the gateway for one ``[[channels]]`` entry with ``adapter = "kannel"``."""
    settings = read_settings(name, options, hub_public_url=context.public_url)
    return KannelGateway(name=name, settings=settings)
