"""Where each watched mailbox folder stands, as the mailbox adapters ask it on (re)connect."""

from __future__ import annotations

from commhub.channels import EmailCursor
from commhub.services.database import Database
from commhub.store import emails as store


class StoredCursors:
    """:class:`~commhub.channels.EmailCursors` read from the database (filing advances them)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def cursor(self, source: str, folder: str) -> EmailCursor | None:
        async with self._db() as session:
            row = await store.cursor(session, source, folder)
        return None if row is None else EmailCursor(row.uidvalidity, row.last_uid)
