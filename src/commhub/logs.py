"""How a commhub process logs: one handler on stderr, personal data masked on every line.

The mask sits in the formatter of the root logger's handler, so it covers
every level and every logger that reaches it — ours and the libraries'
(panoramisk, aiosmtplib, aioimaplib, twilio, aiosmpplib, arq, SQLAlchemy,
aiohttp), which may log raw protocol text — and the tracebacks printed with
them. ``COMMHUB_LOG_PERSONAL_DATA`` turns it off for a debugging session.
"""

from __future__ import annotations

import logging
import sys
from typing import Final

from commhub.config import Settings
from commhub.domain.personal_data import mask_personal_data

LINE_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class PrivateFormatter(logging.Formatter):
    """A formatter whose output has phone numbers and e-mail addresses masked."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_personal_data(super().format(record))


def configure(settings: Settings, *, level: str | None = None, line: str = LINE_FORMAT) -> None:
    """Log to stderr at ``level`` (default ``COMMHUB_LOG_LEVEL``), masked unless configured not to.

    Commands that only run once pass ``level="WARNING"`` and ``line="%(message)s"``:
    what Python prints when nothing is configured, now masked too.
    """
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(line) if settings.log_personal_data else PrivateFormatter(line)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level or settings.log_level, handlers=[handler], force=True)
