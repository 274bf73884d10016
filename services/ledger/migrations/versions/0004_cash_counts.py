"""Cash counts: a float's till counted by denomination against its book balance, and the
variance's decision (posted to the branch's over/short account when approved).

Revision ID: ledger_0004
Revises: ledger_0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ledger_0004"
down_revision: str | None = "ledger_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cash_counts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("branch_id", sa.String(length=64), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("denominations", JSON, nullable=False),
        sa.Column("counted_minor", sa.BigInteger(), nullable=False),
        sa.Column("book_minor", sa.BigInteger(), nullable=False),
        sa.Column("variance_minor", sa.BigInteger(), nullable=False),
        sa.Column("counted_by", sa.String(length=64), nullable=False),
        sa.Column("counted_by_name", sa.String(length=64), nullable=False),
        sa.Column("counted_at", WHEN, nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.Column("decision_comment", sa.Text(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cash_counts_branch_id", "cash_counts", ["branch_id"])


def downgrade() -> None:
    op.drop_index("ix_cash_counts_branch_id", table_name="cash_counts")
    op.drop_table("cash_counts")
