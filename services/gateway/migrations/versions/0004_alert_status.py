"""Alerts fold and are handled: the projection keeps each alert's status, severity, kind and
when it was last seen, so lists and the dashboard filter on them.

Revision ID: gateway_0004
Revises: gateway_0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0004"
down_revision: str | None = "gateway_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rm_alerts") as alerts:
        alerts.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
        alerts.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="open"))
        alerts.add_column(sa.Column("severity", sa.String(length=16), nullable=False, server_default="warning"))
        alerts.add_column(sa.Column("kind", sa.String(length=48), nullable=False, server_default=""))
    op.create_index("ix_rm_alerts_status", "rm_alerts", ["status", "last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_rm_alerts_status", table_name="rm_alerts")
    with op.batch_alter_table("rm_alerts") as alerts:
        for column in ("kind", "severity", "status", "last_seen_at"):
            alerts.drop_column(column)
