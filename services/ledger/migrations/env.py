"""Alembic environment of the ledger database (the messaging tables' history is shared: shared/db/migrate.py)."""

from alembic import context

from services.ledger.models import metadata
from shared.db.migrate import run_env

run_env(context, [metadata])
