"""The database handle that callers give to services.

Services own every transaction: a caller (a web handler, the CLI, a job) passes
the :data:`Database` it was given by ``bootstrap``, and the service opens the
session, writes and commits, so no caller can leave half a change behind or
commit another service's work. Reads open a plain session; writes use
``db.begin()``, which commits on success and rolls back on any error.
"""

from __future__ import annotations

from commhub.store.engine import SessionFactory

Database = SessionFactory
"""Opens sessions on the hub's one engine (``async_sessionmaker``; objects stay usable
after commit, so a service may return what it wrote)."""

__all__ = ["Database"]
