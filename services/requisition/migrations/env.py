"""Alembic environment of the requisition database (the messaging tables' history is shared: shared/db/migrate.py)."""

from alembic import context

from services.requisition.models import metadata
from shared.db.migrate import run_env

run_env(context, [metadata])
