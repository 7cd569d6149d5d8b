"""commhub's SMPP adapter: an ESME bound as a transceiver to an SMSC (SMPP 3.4).

Registered under the ``commhub.adapters`` entry point as ``smpp``; see
README.md beside this file for the settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commhub.channels import ChannelContext
from commhub_smpp.config import read_settings
from commhub_smpp.esme import SmppGateway

__all__ = ["SmppGateway", "adapter"]


def adapter(*, name: str, options: Mapping[str, Any], context: ChannelContext) -> SmppGateway:
    """Build the gateway for one ``[[channels]]`` entry with ``adapter = "smpp"``."""
    return SmppGateway(name=name, settings=read_settings(name, options))
