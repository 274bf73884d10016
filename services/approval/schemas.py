"""How this service presents approval cases in its replies (private to the service)."""

from __future__ import annotations

from typing import Any

from services.approval.models import ApprovalCase, ApprovalStep


def step_body(step: ApprovalStep) -> dict[str, Any]:
    """One step of a chain."""
    return {
        "seq": step.seq,
        "role": step.role,
        "kind": step.kind,
        "status": step.status,
        "admin_may_act": step.admin_may_act,
        "escalation_reason": step.escalation_reason,
        "due_at": step.due_at.isoformat() if step.due_at else None,
        "decided_by": step.decided_by,
        "decided_by_name": step.decided_by_name,
        "acted_as": step.acted_as,
        "decision": step.decision,
        "decided_at": step.decided_at.isoformat() if step.decided_at else None,
        "comment": step.comment,
    }


def case_body(case: ApprovalCase) -> dict[str, Any]:
    """The JSON body of one approval case, with the steps of its current revision."""
    return {
        "id": str(case.id),
        "requisition_id": str(case.requisition_id),
        "voucher_no": case.voucher_no,
        "tier": case.tier,
        "policy_version": case.policy_version,
        "revision": case.revision,
        "fast_track": case.fast_track,
        "status": case.status,
        "reused_receipts": list(case.reused_receipts or []),
        "opened_at": case.opened_at.isoformat(),
        "closed_at": case.closed_at.isoformat() if case.closed_at else None,
        "steps": [step_body(s) for s in case.steps if s.revision == case.revision],
    }


def inbox_item(case: ApprovalCase, step: ApprovalStep) -> dict[str, Any]:
    """What an approver sees in their inbox."""
    return {
        "requisition_id": str(case.requisition_id),
        "voucher_no": case.voucher_no,
        "branch_id": case.branch_id,
        "requester_name": case.requester_name,
        "amount": {"minor_units": case.amount_minor, "currency": case.currency},
        "category": case.category,
        "urgent": case.urgent,
        "urgency_reason": case.urgency_reason,
        "tier": case.tier,
        "step": step.seq,
        "role": step.role,
        "kind": step.kind,
        "due_at": step.due_at.isoformat() if step.due_at else None,
        "overdue": step.sla_escalated,
        "reused_receipts": list(case.reused_receipts or []),
    }
