"""Where a channel lives in this PBX's dialplan: a trunk leg, an operator's phone, or neither.

Read from the admin's settings (contexts and channel-name patterns), never
from the length of a number: ``Local/74951234567@from-trunk-…`` is a trunk
leg because ``from-trunk`` is a trunk context, ``PJSIP/201-0000001a`` an
operator's phone because its name carries extension 201.
"""

from __future__ import annotations

import re
from enum import Enum

import phonenumbers

from commhub_asterisk.config import PbxSettings


class Role(Enum):
    TRUNK = "trunk"
    OPERATOR = "operator"
    OTHER = "other"


class Dialplan:
    """Classifies channels and formats numbers for one PBX."""

    def __init__(self, settings: PbxSettings, *, region: str) -> None:
        self.region = settings.region or region
        self._trunk_contexts = frozenset(settings.trunk_contexts)
        self._operator_contexts = frozenset(settings.operator_contexts)
        self._trunk_names = [re.compile(p) for p in settings.trunk_channels]
        self._extension_names = [re.compile(p) for p in settings.extension_patterns]
        self._served = [re.compile(p) for p in settings.extensions]
        self._dial_prefix = settings.dial_prefix
        self._dial_format = settings.dial_format

    def classify(self, channel: str, context: str) -> tuple[Role, str | None]:
        """The channel's role and, for an operator's phone, its extension.

        Local channels are judged by their context alone (``Local/200@ivr``
        is no phone); SIP/PJSIP/IAX2 channels outside any configured context
        count as a phone when their name carries an extension.
        """
        if context in self._trunk_contexts or any(p.search(channel) for p in self._trunk_names):
            return Role.TRUNK, None
        extension = self.extension(channel)
        if context in self._operator_contexts:
            return Role.OPERATOR, extension
        if extension is not None and not channel.startswith("Local/"):
            return Role.OPERATOR, extension
        return Role.OTHER, None

    def extension(self, channel: str) -> str | None:
        for pattern in self._extension_names:
            found = pattern.search(channel)
            if found is not None:
                return found.group("ext")
        return None

    def serves(self, extension: str, *, explicitly: bool = False) -> bool:
        """True when an ``extensions`` pattern matches the whole ``extension``.

        A PBX whose settings list no extensions serves any, but never
        ``explicitly``: a PBX that names the extension is the better choice.
        """
        if not self._served:
            return not explicitly
        return any(pattern.fullmatch(extension) for pattern in self._served)

    def dialled_number(self, dial_string: str) -> str:
        """The number inside a Dial() argument, without the outbound prefix.

        ``89161234567@sim-pstn-out`` → ``89161234567``;
        ``provider/989161234567`` with prefix ``9`` → ``89161234567``.
        """
        target = dial_string.split("&", 1)[0].split(",", 1)[0]
        if "@" in target:
            target = target.split("@", 1)[0]
        target = target.rsplit("/", 1)[-1]
        return self.strip_prefix(target)

    def strip_prefix(self, number: str) -> str:
        prefix = self._dial_prefix
        if prefix and number.startswith(prefix) and len(number) - len(prefix) >= 6:
            return number[len(prefix) :]
        return number

    def dial_string(self, e164: str) -> str:
        """What to dial for ``e164`` from this PBX: as a local phone would, with the prefix."""
        parsed = phonenumbers.parse(e164, None)
        if self._dial_format == "e164":
            number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        elif self._dial_format == "e164_digits":
            number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
        else:
            local = phonenumbers.format_out_of_country_calling_number(parsed, self.region)
            number = "".join(ch for ch in local if ch.isdigit() or ch == "+")
        return self._dial_prefix + number


def presented(value: str) -> str:
    """A caller id field as presented, with Asterisk's ``<unknown>`` ("not set yet") made empty.

    ``anonymous`` and the like stay: they are what the caller presented, and
    the core's phone reading knows them as withheld.
    """
    return "" if value == "<unknown>" else value.strip()
