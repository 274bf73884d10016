"""Messaging tables added after a service's first migration, created from their one definition.

A service's migration calls these instead of spelling the columns again, so the tables in
``shared.messaging.tables`` stay the only description of them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.db.types import UTCDateTime
from shared.messaging.tables import outbox, outbox_acks, read_model_versions


def create_read_model_versions() -> None:
    """Create ``read_model_versions`` in the database being migrated."""
    read_model_versions.create(op.get_bind())


def drop_read_model_versions() -> None:
    """Drop ``read_model_versions``."""
    read_model_versions.drop(op.get_bind())


def add_delivery_tracking() -> None:
    """Acknowledgements of outbox messages by their consumers, and re-send bookkeeping."""
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("acked_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("resent_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("resends", sa.Integer(), nullable=False, server_default="0"))
    # Messages published before this change were handed to the broker and are taken as delivered.
    op.execute(outbox.update().where(outbox.c.published_at.is_not(None)).values(acked_at=outbox.c.published_at))
    op.create_index(
        "ix_outbox_unacked",
        "outbox",
        ["published_at"],
        postgresql_where=sa.text("acked_at IS NULL AND published_at IS NOT NULL"),
    )
    outbox_acks.create(op.get_bind())


def drop_delivery_tracking() -> None:
    """Undo :func:`add_delivery_tracking`."""
    outbox_acks.drop(op.get_bind())
    op.drop_index("ix_outbox_unacked", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("resends")
        batch.drop_column("resent_at")
        batch.drop_column("acked_at")
