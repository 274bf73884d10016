"""Each float's days (funded, spent by category, the closing balance and available amount),
kept with its transfers for the dashboard from this revision on (days before it are not
rebuilt: the dashboard's history starts at the upgrade).

Revision ID: ledger_0003
Revises: ledger_0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ledger_0003"
down_revision: str | None = "ledger_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "float_days",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("branch_id", sa.String(length=64), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("funded_minor", sa.BigInteger(), nullable=False),
        sa.Column("spent_minor", sa.BigInteger(), nullable=False),
        sa.Column("spent_by_category", JSON, nullable=False),
        sa.Column("closing_balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("closing_available_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_float_days_branch_id", "float_days", ["branch_id"])


def downgrade() -> None:
    op.drop_index("ix_float_days_branch_id", table_name="float_days")
    op.drop_table("float_days")
