"""How this service presents an approval case in its replies (private to the service)."""

from __future__ import annotations

from typing import Any

from services.approval.models import ApprovalCase


def case_body(case: ApprovalCase) -> dict[str, Any]:
    """The JSON body of one approval case."""
    return {
        "id": str(case.id),
        "requisition_id": str(case.requisition_id),
        "tier": case.tier,
        "policy_version": case.policy_version,
        "status": case.status,
        "opened_at": case.opened_at.isoformat(),
    }
