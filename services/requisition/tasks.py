"""Thin Celery adapters: each binds a contract from ``shared.contracts`` to a use case."""

from __future__ import annotations

from services.requisition import service
from shared.contracts import catalog
from shared.messaging.runtime import ServiceRuntime


def register(runtime: ServiceRuntime) -> None:
    """Register this service's commands, queries and event handlers on its runtime."""
    runtime.command(catalog.SUBMIT_REQUISITION)(service.submit_requisition)
    runtime.query(catalog.GET_REQUISITION)(service.get_requisition)
    runtime.on_event(catalog.APPROVAL_CASE_OPENED.name)(service.on_approval_case_opened)
