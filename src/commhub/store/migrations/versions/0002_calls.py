"""calls: missed-call follow-up, click-to-call requests, an index of calls in progress

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index(
        "ix_interactions_open",
        "interactions",
        ["occurred_at"],
        unique=False,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_table(
        "missed_calls",
        sa.Column("id", ID, nullable=False),
        sa.Column("interaction_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=True),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("match_key", sa.String(length=32), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_by_id", ID, nullable=True),
        sa.Column("resolved_by_interaction_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_missed_calls_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_missed_calls_interaction_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"],
            ["users.id"],
            name=op.f("fk_missed_calls_resolved_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_interaction_id"],
            ["interactions.id"],
            name=op.f("fk_missed_calls_resolved_by_interaction_id_interactions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_missed_calls")),
        sa.UniqueConstraint("interaction_id", name=op.f("uq_missed_calls_interaction_id")),
    )
    with op.batch_alter_table("missed_calls", schema=None) as batch_op:
        batch_op.create_index("ix_missed_calls_state", ["state", "occurred_at"], unique=False)
        batch_op.create_index("ix_missed_calls_match_key", ["match_key", "state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_missed_calls_contact_id"), ["contact_id"], unique=False
        )
    op.create_table(
        "call_requests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("contact_id", ID, nullable=True),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("extension", sa.String(length=32), nullable=False),
        sa.Column("channel_name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("interaction_id", ID, nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_call_requests_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_call_requests_interaction_id_interactions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_call_requests_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_requests")),
    )
    with op.batch_alter_table("call_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_requests_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_requests_user_id"))
    op.drop_table("call_requests")
    with op.batch_alter_table("missed_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_missed_calls_contact_id"))
        batch_op.drop_index("ix_missed_calls_match_key")
        batch_op.drop_index("ix_missed_calls_state")
    op.drop_table("missed_calls")
    op.drop_index("ix_interactions_open", table_name="interactions")
