"""Thin Celery adapters: each binds a contract from ``shared.contracts`` to a use case."""

from __future__ import annotations

from services.requisition import alerts, service
from services.requisition.models import Alert, Cap, HistoryEntry, Receipt, Requisition
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
    runtime.command(catalog.ACKNOWLEDGE_ALERT)(alerts.acknowledge_alert)
    runtime.command(catalog.RESOLVE_ALERT)(alerts.resolve_alert)
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
        catalog.ALERT_RAISED: alerts.on_alert_raised,
        catalog.ALERT_CLEARED: alerts.on_alert_cleared,
    }
    for spec, handler in events.items():
        runtime.on_event(spec.name)(handler)
    register_read_models(runtime)


def register_read_models(runtime: ServiceRuntime) -> None:
    """What the gateway projects from this service, and which rows change it."""
    snapshots = runtime.snapshots
    snapshots.model("requisition", catalog.REQUISITION_CHANGED, service.requisition_snapshots, Requisition.__table__)
    snapshots.model("alert", catalog.ALERT_RECORDED, alerts.alert_snapshots, Alert.__table__)
    snapshots.model("caps", catalog.DOCUMENT_CHANGED, service.caps_snapshot)
    snapshots.track(Requisition, lambda r: ("requisition", r.id))
    snapshots.track(HistoryEntry, lambda h: ("requisition", h.requisition_id))
    snapshots.track(Receipt, lambda r: ("requisition", r.requisition_id))
    snapshots.track(Alert, lambda a: ("alert", a.id))
    snapshots.track(Cap, lambda _c: ("caps", "caps"))
