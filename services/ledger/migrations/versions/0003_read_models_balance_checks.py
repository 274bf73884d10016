"""read model versions, balance checks

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db.types
from shared.messaging.schema import create_read_model_versions, drop_read_model_versions

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_read_model_versions()
    op.create_table(
        "balance_checks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("checked_at", shared.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cache_mismatches", shared.db.types.JSONType, nullable=False),
        sa.Column("negative_floats", shared.db.types.JSONType, nullable=False),
        sa.Column("transfers", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("balance_checks")
    drop_read_model_versions()
