"""The floats' days by day, for the spending report (every float's days of a period), which
otherwise reads every day of every float there is.

Revision ID: ledger_0006
Revises: ledger_0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ledger_0006"
down_revision: str | None = "ledger_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_float_days_day", "float_days", ["day"])


def downgrade() -> None:
    op.drop_index("ix_float_days_day", table_name="float_days")
