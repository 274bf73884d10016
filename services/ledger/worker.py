"""The worker entry point of this service: ``pettycash worker ledger``."""

from __future__ import annotations

from services.ledger import SERVICE, tasks
from shared.config import Settings
from shared.messaging.runtime import ServiceRuntime


def build(settings: Settings) -> ServiceRuntime:
    """This service's runtime with every task registered."""
    runtime = ServiceRuntime(SERVICE, settings)
    tasks.register(runtime)
    return runtime
