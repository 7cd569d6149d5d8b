"""segments: a covering index on interactions for a segment's conditions

A segment's interaction condition ("an inbound e-mail since …", "three calls
in six months") reads the set of contacts with such interactions: one range
of this index per channel, without touching the rows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_interactions_segments",
        "interactions",
        ["channel", "occurred_at", "direction", "status", "contact_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_interactions_segments", table_name="interactions")
