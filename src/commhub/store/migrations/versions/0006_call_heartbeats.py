"""call heartbeats: when each PBX link last vouched for every call it had up

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 06:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_heartbeats",
        sa.Column("prefix", sa.String(length=255), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", name=op.f("pk_call_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("call_heartbeats")
