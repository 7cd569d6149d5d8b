"""imports: one writer at a time (lease), resumable rejected-rows file, retention

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 08:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("imports") as batch:
        batch.add_column(
            sa.Column("errors_bytes", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("files_deleted_at", sa.DateTime(), nullable=True))
    # An import a crash left "running" runs nowhere: it waits to be resumed.
    op.execute(
        "UPDATE imports SET status = 'interrupted', "
        "error = 'the hub stopped while importing: resume or restart it' "
        "WHERE status = 'running'"
    )


def downgrade() -> None:
    op.execute("UPDATE imports SET status = 'failed' WHERE status IN ('interrupted', 'cancelled')")
    with op.batch_alter_table("imports") as batch:
        for column in ("files_deleted_at", "lease_until", "claimed_by", "errors_bytes"):
            batch.drop_column(column)
