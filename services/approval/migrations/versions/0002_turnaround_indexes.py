"""Indexes for the approval turnaround report: the steps decided in a period, and the cases
closed in it (or not closed before it began), and the cases with an escalated step, rather than
every step and case read.

Revision ID: approval_0002
Revises: approval_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "approval_0002"
down_revision: str | None = "approval_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As ``services.approval.models.ESCALATED`` at this revision.
ESCALATED = "sla_escalated OR escalation_reason <> ''"


def upgrade() -> None:
    op.create_index("ix_approval_steps_decided_at", "approval_steps", ["decided_at"])
    op.create_index("ix_approval_cases_closed_at", "approval_cases", ["closed_at"])
    op.create_index(
        "ix_approval_steps_escalated",
        "approval_steps",
        ["case_id"],
        postgresql_where=sa.text(ESCALATED),
        sqlite_where=sa.text(ESCALATED),
    )


def downgrade() -> None:
    op.drop_index("ix_approval_steps_escalated", table_name="approval_steps")
    op.drop_index("ix_approval_cases_closed_at", table_name="approval_cases")
    op.drop_index("ix_approval_steps_decided_at", table_name="approval_steps")
