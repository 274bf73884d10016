"""Payment runs: many ready payments authorised with one code, and which run started an execution.

Revision ID: payment_0002
Revises: payment_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "payment_0002"
down_revision: str | None = "payment_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payment_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("dual_above_minor", sa.BigInteger(), nullable=False),
        sa.Column("maker_id", sa.String(length=64), nullable=False),
        sa.Column("maker_name", sa.String(length=120), nullable=False),
        sa.Column("checker_id", sa.String(length=64), nullable=True),
        sa.Column("checker_name", sa.String(length=120), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("started_at", WHEN, nullable=True),
        sa.Column("cancelled_at", WHEN, nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_payment_runs_state", "payment_runs", ["state"])
    op.create_table(
        "payment_run_items",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("requisition_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("voucher_no", sa.String(length=48), nullable=False),
        sa.Column("branch_id", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payee_name", sa.String(length=120), nullable=False),
        sa.Column("payee_method", sa.String(length=16), nullable=False),
        sa.Column("included", sa.Boolean(), nullable=False),
        sa.Column("execution", sa.Integer(), nullable=True),
        sa.Column("refusal", sa.String(length=48), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["payment_runs.id"]),
        sa.PrimaryKeyConstraint("run_id", "requisition_id"),
    )
    op.add_column("payment_executions", sa.Column("run_id", sa.Uuid(), nullable=True))
    op.create_index("ix_payment_executions_run_id", "payment_executions", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_payment_executions_run_id", table_name="payment_executions")
    op.drop_column("payment_executions", "run_id")
    op.drop_table("payment_run_items")
    op.drop_index("ix_payment_runs_state", table_name="payment_runs")
    op.drop_table("payment_runs")
