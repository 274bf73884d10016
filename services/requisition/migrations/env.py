"""Alembic environment of the requisition database: this service's tables only."""

from alembic import context

from services.requisition.models import metadata
from shared.db.migrate import run_env
from shared.messaging.tables import metadata as messaging_metadata

run_env(context, [metadata, messaging_metadata])
