"""The payment runs' projection (the payment service's snapshots).

Revision ID: gateway_0007
Revises: gateway_0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "gateway_0007"
down_revision: str | None = "gateway_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rm_payment_runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.Column("source_at", WHEN, nullable=False),
        sa.Column("projected_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rm_payment_runs_created", "rm_payment_runs", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_rm_payment_runs_created", table_name="rm_payment_runs")
    op.drop_table("rm_payment_runs")
