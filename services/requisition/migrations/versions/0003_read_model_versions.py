"""read model versions

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from shared.messaging.schema import create_read_model_versions, drop_read_model_versions

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_read_model_versions()


def downgrade() -> None:
    drop_read_model_versions()
