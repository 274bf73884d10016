"""How this service presents requisitions in its replies (private to the service)."""

from __future__ import annotations

from typing import Any

from services.requisition.models import Alert, Cap, HistoryEntry, Receipt, Requisition


def requisition_body(
    req: Requisition, history: list[HistoryEntry] | None = None, receipts: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The JSON body of one requisition, with its history and receipts when given."""
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
        "revision": req.revision,
        "tier": req.tier,
        "approval_case_id": str(req.approval_case_id) if req.approval_case_id else None,
        "changes_deadline": req.changes_deadline.isoformat() if req.changes_deadline else None,
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
    if receipts is not None:
        body["receipts"] = receipts
    return body


def receipt_body(receipt: Receipt, reused_in: list[str]) -> dict[str, Any]:
    """A receipt, flagged when the same file is attached to other requisitions."""
    return {
        "sha256": receipt.sha256,
        "filename": receipt.filename,
        "content_type": receipt.content_type,
        "size": receipt.size,
        "uploaded_at": receipt.uploaded_at.isoformat(),
        "reused": bool(reused_in),
        "reused_in": reused_in,
    }


def cap_body(cap: Cap) -> dict[str, Any]:
    return {
        "kind": cap.kind,
        "category": cap.category,
        "branch_id": cap.branch_id,
        "limit": {"minor_units": cap.limit_minor, "currency": cap.currency},
    }


def _iso(when: Any) -> str | None:
    return when.isoformat() if when is not None else None


def alert_body(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "kind": alert.kind,
        "subject": alert.subject,
        "severity": alert.severity,
        "message": alert.message,
        "requisition_id": str(alert.requisition_id) if alert.requisition_id else None,
        "branch_id": alert.branch_id,
        "source": alert.source,
        "raised_at": alert.raised_at.isoformat(),
        "last_seen_at": _iso(alert.last_seen_at),
        "count": alert.count,
        "status": alert.status,
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": _iso(alert.acknowledged_at),
        "resolved_by": alert.resolved_by,
        "resolved_at": _iso(alert.resolved_at),
        "resolution_note": alert.resolution_note,
    }
