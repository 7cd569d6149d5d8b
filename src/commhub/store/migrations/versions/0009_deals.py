"""deals: pipelines and their stages, deals with their stage history, invoices and payments

The default pipeline's names are presets, shown in each viewer's language
until an admin renames them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 15:40:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AMOUNT = sa.Numeric(precision=20, scale=4).with_variant(sa.BigInteger(), "sqlite")
"""Money: exact NUMERIC on PostgreSQL; on SQLite (whose NUMERIC is a float) ten-thousandths
as an INTEGER (``models.ExactAmount`` converts)."""

FUNNEL_INDEX_COLUMNS = [
    "pipeline_id",
    "reached_at",
    "stage_id",
    "currency",
    "amount",
    "moved_on_at",
    "won_at",
    "skipped",
    "seconds_in",
    "owner_id",
    "source",
    "deal_id",
]
"""Every column the report reads, so its aggregates never visit the table (see models)."""

DEFAULT_STAGES = (
    ("new_lead", "open"),
    ("in_progress", "open"),
    ("proposal", "open"),
    ("won", "won"),
    ("lost", "lost"),
)


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("preset", sa.String(length=50), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("auto_create", sa.JSON(), nullable=False),
        sa.Column("won_when_paid", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipelines")),
    )
    op.create_table(
        "stages",
        sa.Column("id", ID, nullable=False),
        sa.Column("pipeline_id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("preset", sa.String(length=50), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("removed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_stages_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stages")),
    )
    op.create_index("ix_stages_pipeline", "stages", ["pipeline_id", "position"], unique=False)
    op.create_table(
        "deals",
        sa.Column("id", ID, nullable=False),
        sa.Column("pipeline_id", ID, nullable=False),
        sa.Column("stage_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=True),
        sa.Column("company_id", ID, nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("owner_id", ID, nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("expected_close_on", sa.Date(), nullable=True),
        sa.Column("next_step", sa.String(length=500), nullable=False),
        sa.Column("next_step_due_on", sa.Date(), nullable=True),
        sa.Column("lost_reason", sa.String(length=500), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("origin_key", sa.String(length=200), nullable=True),
        sa.Column("stage_entered_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_deals_company_id_companies"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_deals_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_deals_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_deals_owner_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_id"], ["pipelines.id"], name=op.f("fk_deals_pipeline_id_pipelines")
        ),
        sa.ForeignKeyConstraint(["stage_id"], ["stages.id"], name=op.f("fk_deals_stage_id_stages")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deals")),
        sa.UniqueConstraint("origin_key", name=op.f("uq_deals_origin_key")),
    )
    op.create_index("ix_deals_board", "deals", ["stage_id", "updated_at", "id"], unique=False)
    op.create_index("ix_deals_company", "deals", ["company_id"], unique=False)
    op.create_index("ix_deals_contact", "deals", ["contact_id", "closed_at"], unique=False)
    op.create_index("ix_deals_owner", "deals", ["owner_id", "closed_at"], unique=False)
    op.create_index("ix_deals_pipeline_closed", "deals", ["pipeline_id", "closed_at"], unique=False)
    op.create_index(
        "ix_deals_stage_money", "deals", ["stage_id", "currency", "amount"], unique=False
    )
    op.create_table(
        "invoices",
        sa.Column("id", ID, nullable=False),
        sa.Column("deal_id", ID, nullable=False),
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("paid_amount", AMOUNT, nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("paid_in_full", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_invoices_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deals.id"], name=op.f("fk_invoices_deal_id_deals"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
    )
    op.create_index(op.f("ix_invoices_deal_id"), "invoices", ["deal_id"], unique=False)
    op.create_index("ix_invoices_open", "invoices", ["paid_in_full", "due_on"], unique=False)
    op.create_table(
        "stage_changes",
        sa.Column("id", ID, nullable=False),
        sa.Column("deal_id", ID, nullable=False),
        sa.Column("from_stage_id", ID, nullable=True),
        sa.Column("to_stage_id", ID, nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("changed_by_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["changed_by_id"],
            ["users.id"],
            name=op.f("fk_stage_changes_changed_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deals.id"],
            name=op.f("fk_stage_changes_deal_id_deals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["from_stage_id"], ["stages.id"], name=op.f("fk_stage_changes_from_stage_id_stages")
        ),
        sa.ForeignKeyConstraint(
            ["to_stage_id"], ["stages.id"], name=op.f("fk_stage_changes_to_stage_id_stages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_changes")),
    )
    op.create_index(
        "ix_stage_changes_deal", "stage_changes", ["deal_id", "changed_at", "id"], unique=False
    )
    op.create_table(
        "stage_reaches",
        sa.Column("id", ID, nullable=False),
        sa.Column("deal_id", ID, nullable=False),
        sa.Column("pipeline_id", ID, nullable=False),
        sa.Column("stage_id", ID, nullable=False),
        sa.Column("reached_at", sa.DateTime(), nullable=False),
        sa.Column("skipped", sa.Boolean(), nullable=False),
        sa.Column("moved_on_at", sa.DateTime(), nullable=True),
        sa.Column("won_at", sa.DateTime(), nullable=True),
        sa.Column("seconds_in", sa.Integer(), nullable=False),
        sa.Column("owner_id", ID, nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("lost_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deals.id"],
            name=op.f("fk_stage_reaches_deal_id_deals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_stage_reaches_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["stage_id"], ["stages.id"], name=op.f("fk_stage_reaches_stage_id_stages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_reaches")),
        sa.UniqueConstraint("deal_id", "stage_id", name="uq_stage_reaches_deal_stage"),
    )
    op.create_index("ix_stage_reaches_funnel", "stage_reaches", FUNNEL_INDEX_COLUMNS, unique=False)
    op.create_table(
        "funnel_days",
        sa.Column("id", ID, nullable=False),
        sa.Column("pipeline_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("stage_id", ID, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reached", sa.Integer(), nullable=False),
        sa.Column("moved_on", sa.Integer(), nullable=False),
        sa.Column("won", sa.Integer(), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_funnel_days_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["stage_id"], ["stages.id"], name=op.f("fk_funnel_days_stage_id_stages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnel_days")),
        sa.UniqueConstraint(
            "pipeline_id", "day", "stage_id", "currency", name="uq_funnel_days_key"
        ),
    )
    op.create_table(
        "funnel_losses",
        sa.Column("id", ID, nullable=False),
        sa.Column("pipeline_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("stage_id", ID, nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("deals", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_funnel_losses_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["stage_id"], ["stages.id"], name=op.f("fk_funnel_losses_stage_id_stages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnel_losses")),
        sa.UniqueConstraint(
            "pipeline_id", "day", "stage_id", "reason", name="uq_funnel_losses_key"
        ),
    )
    op.create_table(
        "funnel_stays",
        sa.Column("id", ID, nullable=False),
        sa.Column("pipeline_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("stage_id", ID, nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("deals", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_funnel_stays_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["stage_id"], ["stages.id"], name=op.f("fk_funnel_stays_stage_id_stages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnel_stays")),
        sa.UniqueConstraint("pipeline_id", "day", "stage_id", "days", name="uq_funnel_stays_key"),
    )
    op.create_table(
        "payments",
        sa.Column("id", ID, nullable=False),
        sa.Column("invoice_id", ID, nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("recorded_by_id", ID, nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_payments_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["users.id"],
            name=op.f("fk_payments_recorded_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("key", name=op.f("uq_payments_key")),
    )
    op.create_index(op.f("ix_payments_invoice_id"), "payments", ["invoice_id"], unique=False)
    _seed_default_pipeline()


def _seed_default_pipeline() -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    pipelines = sa.table(
        "pipelines",
        sa.column("id", ID),
        sa.column("name", sa.String),
        sa.column("preset", sa.String),
        sa.column("position", sa.Integer),
        sa.column("is_default", sa.Boolean),
        sa.column("auto_create", sa.JSON),
        sa.column("won_when_paid", sa.Boolean),
        sa.column("created_at", sa.DateTime),
    )
    stages = sa.table(
        "stages",
        sa.column("pipeline_id", ID),
        sa.column("name", sa.String),
        sa.column("preset", sa.String),
        sa.column("kind", sa.String),
        sa.column("position", sa.Integer),
        sa.column("created_at", sa.DateTime),
    )
    op.bulk_insert(
        pipelines,
        [
            {
                "id": 1,
                "name": "",
                "preset": "sales",
                "position": 0,
                "is_default": True,
                "auto_create": {},
                "won_when_paid": True,
                "created_at": now,
            }
        ],
    )
    op.bulk_insert(
        stages,
        [
            {
                "pipeline_id": 1,
                "name": "",
                "preset": preset,
                "kind": kind,
                "position": position,
                "created_at": now,
            }
            for position, (preset, kind) in enumerate(DEFAULT_STAGES)
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        # The explicit id 1 leaves the sequence behind; the next pipeline must get 2.
        op.execute("SELECT setval('pipelines_id_seq', (SELECT max(id) FROM pipelines))")


def downgrade() -> None:
    for table in (
        "funnel_losses",
        "funnel_stays",
        "funnel_days",
        "payments",
        "invoices",
        "stage_reaches",
        "stage_changes",
        "deals",
        "stages",
    ):
        op.drop_table(table)
    op.drop_table("pipelines")
