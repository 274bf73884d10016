"""Alembic environment of the gateway database (the messaging tables' history is shared: shared/db/migrate.py)."""

from alembic import context

from services.gateway.models import metadata
from services.gateway import readmodels  # noqa: F401 - registers the projection tables on metadata
from shared.db.migrate import run_env

run_env(context, [metadata])
