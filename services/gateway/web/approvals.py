"""The approver's pages: the inbox, and the decisions taken on a requisition's page."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request

from services.gateway import reads
from services.gateway.access import permits
from services.gateway.api.approvals import decide
from services.gateway.api.replies import read
from services.gateway.auth import current_actor
from services.gateway.branches import branch_codes
from services.gateway.web import bp, page
from services.gateway.web.requisitions import back_to_requisition, requisition_page
from shared.contracts.permissions import Action

DECISIONS = ("approve", "reject", "request_changes", "confirm_urgency", "revert_urgency")
# The decisions that must say why.
NEEDS_A_REASON = {"reject": "Say why you reject it.", "request_changes": "Say what should change."}


@bp.get("/approvals")
@permits(Action.READ_INBOX, sessions_only=True)
def inbox() -> Any:
    items = read(reads.inbox, current_actor())["items"]
    return page("inbox.html", items=items, branch_codes=branch_codes())


@bp.post("/requisitions/<uuid:requisition_id>/decision")
@permits(Action.DECIDE_APPROVAL, sessions_only=True)
def decision(requisition_id: uuid.UUID) -> Any:
    """Approve, reject (with a reason), request changes (with a deadline), confirm or revert urgency."""
    chosen = request.form.get("decision", "")
    comment = request.form.get("comment", "").strip()[:1000]
    if chosen not in DECISIONS:
        return _refused(requisition_id, 400, "Choose a decision.")
    if chosen in NEEDS_A_REASON and not comment:
        return _refused(requisition_id, 400, NEEDS_A_REASON[chosen])
    extra: dict[str, Any] = {}
    if chosen == "request_changes":
        hours = request.form.get("deadline_hours", "72")
        extra["deadline_hours"] = int(hours) if hours.isdigit() and 1 <= int(hours) <= 720 else 72
    return back_to_requisition(requisition_id, decide(requisition_id, chosen, comment, **extra))


def _refused(requisition_id: uuid.UUID, status: int, why: str) -> Any:
    return requisition_page(requisition_id, status=status, error=why)
