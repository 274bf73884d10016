"""delivery tracking

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from shared.messaging.schema import add_delivery_tracking, drop_delivery_tracking

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_delivery_tracking()


def downgrade() -> None:
    drop_delivery_tracking()
