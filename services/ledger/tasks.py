"""Thin Celery adapters: each binds a contract from ``shared.contracts`` to a use case."""

from __future__ import annotations

from services.ledger import service
from shared.contracts import catalog
from shared.messaging.runtime import ServiceRuntime


def register(runtime: ServiceRuntime) -> None:
    """Register this service's commands, queries and event handlers on its runtime."""
    runtime.command(catalog.OPEN_FLOAT)(service.open_float)
    runtime.command(catalog.REQUEST_REPLENISHMENT)(service.request_replenishment)
    runtime.command(catalog.DECIDE_REPLENISHMENT)(service.decide_replenishment)
    runtime.query(catalog.GET_FLOAT_STATUS)(service.get_float_status)
    runtime.query(catalog.LIST_FLOATS)(service.list_floats)
    runtime.query(catalog.GET_TRIAL_BALANCE)(service.get_trial_balance)
    runtime.on_event(catalog.REQUISITION_APPROVED.name)(service.on_requisition_approved)
    runtime.on_event(catalog.PAYMENT_COMPLETED.name)(service.on_payment_completed)
    runtime.on_event(catalog.PAYMENT_FAILED.name)(service.on_payment_failed)
    runtime.on_event(catalog.REQUISITION_CANCELLED.name)(service.on_requisition_cancelled)
