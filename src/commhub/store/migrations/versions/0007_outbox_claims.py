"""outbox claims: who holds a row and until when, what was asked, who settled a doubt

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 08:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column(
                "resolved_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch.add_column(sa.Column("resolved_at", sa.DateTime(), nullable=True))
        batch.create_foreign_key(
            "fk_outbox_resolved_by_users",
            "users",
            ["resolved_by"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_outbox_claim", ["channel", "source", "state"])
    # Rows a crash left "sending" were never confirmed: they are in doubt, not failed.
    op.execute(
        "UPDATE outbox SET state = 'uncertain', "
        "last_error = 'the hub stopped while sending it: not known whether it went' "
        "WHERE state = 'sending'"
    )


def downgrade() -> None:
    op.execute("UPDATE outbox SET state = 'sending' WHERE state = 'uncertain'")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_claim")
        batch.drop_constraint("fk_outbox_resolved_by_users", type_="foreignkey")
        for column in (
            "resolved_at",
            "resolved_by",
            "request_hash",
            "lease_until",
            "claimed_at",
            "claimed_by",
        ):
            batch.drop_column(column)
