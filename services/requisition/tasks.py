"""Thin Celery adapters: each binds a contract from ``shared.contracts`` to a use case."""

from __future__ import annotations

from services.requisition import service
from shared.contracts import catalog
from shared.messaging.runtime import ServiceRuntime


def register(runtime: ServiceRuntime) -> None:
    """Register this service's commands, queries and event handlers on its runtime."""
    runtime.command(catalog.SUBMIT_REQUISITION)(service.submit_requisition)
    runtime.command(catalog.UPDATE_REQUISITION)(service.update_requisition)
    runtime.command(catalog.SUBMIT_DRAFT)(service.submit_draft)
    runtime.command(catalog.CANCEL_REQUISITION)(service.cancel_requisition)
    runtime.command(catalog.ATTACH_RECEIPT)(service.attach_receipt)
    runtime.command(catalog.SET_CAPS)(service.set_caps)
    runtime.query(catalog.GET_REQUISITION)(service.get_requisition)
    runtime.query(catalog.LIST_REQUISITIONS)(service.list_requisitions)
    runtime.query(catalog.GET_CAPS)(service.get_caps)
    runtime.query(catalog.LIST_ALERTS)(service.list_alerts)
    runtime.maintenance(catalog.EXPIRE_REQUISITIONS)(service.expire_requisitions)
    events = {
        catalog.APPROVAL_CASE_OPENED: service.on_approval_case_opened,
        catalog.APPROVAL_STEP_COMPLETED: service.on_step_completed,
        catalog.REQUISITION_APPROVED: service.on_approved,
        catalog.REQUISITION_REJECTED: service.on_rejected,
        catalog.CHANGES_REQUESTED: service.on_changes_requested,
        catalog.URGENCY_REVERTED: service.on_urgency_reverted,
        catalog.APPROVAL_ESCALATED: service.on_escalated,
        catalog.FUNDS_RESERVED: service.on_funds_reserved,
        catalog.FUNDS_AWAITED: service.on_funds_awaited,
        catalog.PAYMENT_STARTED: service.on_payment_started,
        catalog.PAYMENT_COMPLETED: service.on_payment_completed,
        catalog.PAYMENT_FAILED: service.on_payment_failed,
        catalog.ALERT_RAISED: service.on_alert_raised,
    }
    for spec, handler in events.items():
        runtime.on_event(spec.name)(handler)
