"""Thin Celery adapters: each binds a contract from ``shared.contracts`` to a use case."""

from __future__ import annotations

from services.approval import service
from shared.contracts import catalog
from shared.messaging.runtime import ServiceRuntime


def register(runtime: ServiceRuntime) -> None:
    """Register this service's commands, queries and event handlers on its runtime."""
    runtime.query(catalog.GET_APPROVAL_CASE)(service.get_approval_case)
    runtime.on_event(catalog.REQUISITION_SUBMITTED.name)(service.open_case)
