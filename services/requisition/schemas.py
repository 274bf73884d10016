"""How this service presents a requisition in its replies (private to the service)."""

from __future__ import annotations

from typing import Any

from services.requisition.models import HistoryEntry, Requisition


def requisition_body(req: Requisition, history: list[HistoryEntry] | None = None) -> dict[str, Any]:
    """The JSON body of one requisition, with its history when given."""
    body: dict[str, Any] = {
        "id": str(req.id),
        "voucher_no": req.voucher_no,
        "branch_id": req.branch_id,
        "branch_code": req.branch_code,
        "region_id": req.region_id,
        "requester_id": req.requester_id,
        "requester_name": req.requester_name,
        "amount": {"minor_units": req.amount_minor, "currency": req.currency},
        "category": req.category,
        "purpose": req.purpose,
        "payee": {"name": req.payee_name, "method": req.payee_method, "account_ref": req.payee_account_ref},
        "urgent": req.urgent,
        "urgency_reason": req.urgency_reason,
        "status": req.status,
        "tier": req.tier,
        "approval_case_id": str(req.approval_case_id) if req.approval_case_id else None,
        "created_at": req.created_at.isoformat(),
        "updated_at": req.updated_at.isoformat(),
    }
    if history is not None:
        body["history"] = [
            {
                "at": h.at.isoformat(),
                "actor_id": h.actor_id,
                "actor_name": h.actor_name,
                "action": h.action,
                "from_status": h.from_status,
                "to_status": h.to_status,
                "comment": h.comment,
            }
            for h in history
        ]
    return body
