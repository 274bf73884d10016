"""Alerts fold, are acknowledged and resolved: a subject, a status, first and last seen, a
count, who acknowledged and who resolved (with a note), the region for scope; one unresolved
alert per kind and subject.

Revision ID: requisition_0002
Revises: requisition_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "requisition_0002"
down_revision: str | None = "requisition_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNRESOLVED = sa.text("status <> 'resolved'")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("alerts") as alerts:
        alerts.add_column(sa.Column("subject", sa.String(length=128), nullable=True))
        alerts.add_column(sa.Column("region_id", sa.String(length=64), nullable=True))
        alerts.add_column(sa.Column("last_seen_at", WHEN, nullable=True))
        alerts.add_column(sa.Column("count", sa.Integer(), nullable=False, server_default="1"))
        alerts.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="open"))
        alerts.add_column(sa.Column("acknowledged_by", sa.String(length=64), nullable=True))
        alerts.add_column(sa.Column("acknowledged_at", WHEN, nullable=True))
        alerts.add_column(sa.Column("resolved_by", sa.String(length=64), nullable=True))
        alerts.add_column(sa.Column("resolved_at", WHEN, nullable=True))
        alerts.add_column(sa.Column("resolution_note", sa.Text(), nullable=False, server_default=""))
    # Alerts kept before folding each stand alone: their own subject.
    op.execute("UPDATE alerts SET subject = 'alert:' || CAST(id AS VARCHAR(20)), last_seen_at = raised_at")
    with op.batch_alter_table("alerts") as alerts:
        alerts.alter_column("subject", existing_type=sa.String(length=128), nullable=False)
        alerts.alter_column("last_seen_at", existing_type=WHEN, nullable=False)
        alerts.alter_column("count", existing_type=sa.Integer(), server_default=None)
        alerts.alter_column("status", existing_type=sa.String(length=16), server_default=None)
        alerts.alter_column("resolution_note", existing_type=sa.Text(), server_default=None)
    op.create_index(
        "uq_alerts_unresolved_subject",
        "alerts",
        ["kind", "subject"],
        unique=True,
        postgresql_where=UNRESOLVED,
        sqlite_where=UNRESOLVED,
    )
    op.create_index("ix_alerts_status", "alerts", ["status", "last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_status", table_name="alerts")
    op.drop_index("uq_alerts_unresolved_subject", table_name="alerts")
    with op.batch_alter_table("alerts") as alerts:
        for column in (
            "resolution_note",
            "resolved_at",
            "resolved_by",
            "acknowledged_at",
            "acknowledged_by",
            "status",
            "count",
            "last_seen_at",
            "region_id",
            "subject",
        ):
            alerts.drop_column(column)
