"""delivery tracking

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from shared.messaging.schema import add_delivery_tracking, drop_delivery_tracking

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_delivery_tracking()


def downgrade() -> None:
    drop_delivery_tracking()
