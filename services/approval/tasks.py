"""Thin Celery adapters: each binds a contract from ``shared.contracts`` to a use case."""

from __future__ import annotations

from services.approval import reports, service
from services.approval.models import ApprovalCase, ApprovalStep, PolicyVersion
from shared.contracts import catalog
from shared.messaging.runtime import ServiceRuntime


def register(runtime: ServiceRuntime) -> None:
    """Register this service's commands, queries and event handlers on its runtime."""
    runtime.command(catalog.RECORD_DECISION, on_refusal=service.record_refused_decision)(service.record_decision)
    runtime.command(catalog.SET_POLICY)(service.set_policy)
    runtime.maintenance(catalog.ESCALATE_OVERDUE)(service.escalate_overdue)
    runtime.query(catalog.REPORT_QUERIES["approval"])(reports.run_report)
    runtime.on_event(catalog.REQUISITION_SUBMITTED.name)(service.on_requisition_submitted)
    runtime.on_event(catalog.USER_DIRECTORY_UPDATED.name)(service.on_user_directory_updated)
    runtime.on_event(catalog.REQUISITION_CANCELLED.name)(service.on_requisition_closed)
    runtime.on_event(catalog.REQUISITION_EXPIRED.name)(service.on_requisition_closed)
    runtime.on_event(catalog.RECEIPT_ATTACHED.name)(service.on_receipt_attached)
    register_read_models(runtime)


def register_read_models(runtime: ServiceRuntime) -> None:
    """What the gateway projects from this service, and which rows change it."""
    snapshots = runtime.snapshots
    snapshots.model("approval_case", catalog.APPROVAL_CASE_CHANGED, service.case_snapshots, ApprovalCase.__table__)
    snapshots.model("policy", catalog.DOCUMENT_CHANGED, service.policy_snapshot)
    snapshots.track(ApprovalCase, lambda c: ("approval_case", c.id))
    snapshots.track(ApprovalStep, lambda s: ("approval_case", s.case_id))
    snapshots.track(PolicyVersion, lambda _p: ("policy", "policy"))
