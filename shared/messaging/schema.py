"""Messaging tables added after a service's first migration, created from their one definition.

A service's migration calls these instead of spelling the columns again, so the tables in
``shared.messaging.tables`` stay the only description of them.
"""

from __future__ import annotations

from alembic import op

from shared.messaging.tables import read_model_versions


def create_read_model_versions() -> None:
    """Create ``read_model_versions`` in the database being migrated."""
    read_model_versions.create(op.get_bind())


def drop_read_model_versions() -> None:
    """Drop ``read_model_versions``."""
    read_model_versions.drop(op.get_bind())
