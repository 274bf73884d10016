"""Payments by the time they were made, for the payment summary of a period (which otherwise
reads every payment there is).

Revision ID: payment_0003
Revises: payment_0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "payment_0003"
down_revision: str | None = "payment_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_payments_created_at", "payments", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_payments_created_at", table_name="payments")
