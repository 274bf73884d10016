"""Alembic environment of the gateway database: this service's tables only."""

from alembic import context

from services.gateway.models import metadata
from services.gateway import readmodels  # noqa: F401 - registers the projection tables on metadata
from shared.db.migrate import run_env
from shared.messaging.tables import metadata as messaging_metadata

run_env(context, [metadata, messaging_metadata])
