"""The projector: ``pettycash worker gateway`` keeps the gateway's read models from the services' snapshots."""

from __future__ import annotations

from services.gateway import readmodels
from shared.config import Settings
from shared.contracts.catalog import subscriptions
from shared.messaging.runtime import ServiceRuntime


def build(settings: Settings) -> ServiceRuntime:
    """The gateway's runtime: one handler for every snapshot event it subscribes to."""
    runtime = ServiceRuntime("gateway", settings)
    for spec in subscriptions("gateway"):
        runtime.on_event(spec.name)(readmodels.on_snapshot)
    return runtime
