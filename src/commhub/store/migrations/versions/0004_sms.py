"""sms: the text and shape behind SMS interactions, and the gateways' ids of their parts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 18:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sms_messages",
        sa.Column("id", ID, nullable=False),
        sa.Column("interaction_id", ID, nullable=False),
        sa.Column("gateway", sa.String(length=100), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("encoding", sa.String(length=8), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_sms_messages_interaction_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_messages")),
        sa.UniqueConstraint("interaction_id", name=op.f("uq_sms_messages_interaction_id")),
    )
    op.create_table(
        "sms_parts",
        sa.Column("id", ID, nullable=False),
        sa.Column("sms_id", ID, nullable=False),
        sa.Column("gateway", sa.String(length=100), nullable=False),
        sa.Column("gateway_id", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sms_id"],
            ["sms_messages.id"],
            name=op.f("fk_sms_parts_sms_id_sms_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_parts")),
        sa.UniqueConstraint("gateway", "gateway_id", name="uq_sms_parts_gateway_id"),
    )
    op.create_index(op.f("ix_sms_parts_sms_id"), "sms_parts", ["sms_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sms_parts_sms_id"), table_name="sms_parts")
    op.drop_table("sms_parts")
    op.drop_table("sms_messages")
