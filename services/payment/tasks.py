"""Thin Celery adapters: each binds a contract from ``shared.contracts`` to a use case."""

from __future__ import annotations

from shared.messaging.runtime import ServiceRuntime


def register(runtime: ServiceRuntime) -> None:
    """Register this service's commands, queries and event handlers on its runtime."""
    # The payment use cases arrive with issue 4; the worker already serves its queue,
    # its inbox, outbox, dead letters and maintenance task.
