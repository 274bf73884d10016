"""The dashboard's projections: each float's days (the ledger's snapshots: history and spend),
each payment's state and completion time, requisitions counted by state, and each
requisition's summary (what lists show: read without its history).

Revision ID: gateway_0005
Revises: gateway_0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "gateway_0005"
down_revision: str | None = "gateway_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rm_float_days",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("branch_id", sa.String(length=64), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("funded_minor", sa.BigInteger(), nullable=False),
        sa.Column("spent_minor", sa.BigInteger(), nullable=False),
        sa.Column("closing_balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("closing_available_minor", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.Column("source_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("projected_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rm_float_days_day", "rm_float_days", ["day", "branch_id"])
    with op.batch_alter_table("rm_payments") as payments:
        payments.add_column(sa.Column("state", sa.String(length=16), nullable=False, server_default="processing"))
        payments.add_column(sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_rm_payments_completed", "rm_payments", ["completed_at"])
    op.create_index("ix_rm_requisitions_status", "rm_requisitions", ["status", "branch_id"])
    with op.batch_alter_table("rm_requisitions") as requisitions:
        requisitions.add_column(sa.Column("summary", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rm_requisitions") as requisitions:
        requisitions.drop_column("summary")
    op.drop_index("ix_rm_requisitions_status", table_name="rm_requisitions")
    op.drop_index("ix_rm_payments_completed", table_name="rm_payments")
    with op.batch_alter_table("rm_payments") as payments:
        payments.drop_column("completed_at")
        payments.drop_column("state")
    op.drop_index("ix_rm_float_days_day", table_name="rm_float_days")
    op.drop_table("rm_float_days")
