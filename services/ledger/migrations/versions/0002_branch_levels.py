"""Branch levels: each branch's float reorder level and imprest amount, kept from the
gateway's BranchDirectoryUpdated events.

Revision ID: ledger_0002
Revises: ledger_0001
Branch: ledger

Matches BranchLevels in services/ledger/models.py.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ledger_0002"
down_revision: str | None = "ledger_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "branch_levels",
        sa.Column("branch_id", sa.String(length=64), nullable=False),
        sa.Column("branch_code", sa.String(length=32), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("head_office", sa.Boolean(), nullable=False),
        sa.Column("reorder_level_minor", sa.BigInteger(), nullable=True),
        sa.Column("reorder_level_currency", sa.String(length=3), nullable=True),
        sa.Column("imprest_minor", sa.BigInteger(), nullable=True),
        sa.Column("imprest_currency", sa.String(length=3), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(reorder_level_minor IS NULL) = (reorder_level_currency IS NULL)", name="ck_branch_levels_reorder_level"
        ),
        sa.CheckConstraint("(imprest_minor IS NULL) = (imprest_currency IS NULL)", name="ck_branch_levels_imprest"),
        sa.PrimaryKeyConstraint("branch_id"),
    )


def downgrade() -> None:
    op.drop_table("branch_levels")
