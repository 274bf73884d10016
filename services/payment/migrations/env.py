"""Alembic environment of the payment database: this service's tables only."""

from alembic import context

from services.payment.models import metadata
from shared.db.migrate import run_env
from shared.messaging.tables import metadata as messaging_metadata

run_env(context, [metadata, messaging_metadata])
