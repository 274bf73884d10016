"""Treasury's pages: the floats and the payments ready, and paying one with the one-time code."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request

from services.gateway import reads
from services.gateway.access import permits
from services.gateway.api.payments import execute_payment
from services.gateway.api.replies import read
from services.gateway.auth import current_actor
from services.gateway.web import bp, page
from services.gateway.web.requisitions import back_to_requisition, requisition_page
from shared.contracts.permissions import Action, may


@bp.post("/requisitions/<uuid:requisition_id>/pay")
@permits(Action.EXECUTE_PAYMENT, sessions_only=True)
def pay(requisition_id: uuid.UUID) -> Any:
    """Pay with the code the authenticator shows now; the page then follows the payment."""
    code = request.form.get("code", "").strip()
    if not (code.isdigit() and len(code) == 6):
        return requisition_page(requisition_id, status=400, error="A code is the six digits your app shows now.")
    return back_to_requisition(requisition_id, execute_payment(requisition_id, code))


@bp.get("/treasury")
@permits(Action.READ_FLOATS, sessions_only=True)
def treasury() -> Any:
    """The floats by branch, and the requisitions approved and ready to pay (or failed)."""
    actor = current_actor()

    def listed(status: str) -> list[dict[str, Any]]:
        found = read(reads.list_requisitions, actor, scope="all", status=status, branch_id=None, limit=100, offset=0)
        return list(found["items"])

    return page(
        "treasury.html",
        floats=read(reads.floats, actor),
        ready=listed("reserved"),
        failed=listed("payment_failed"),
        may_pay=may(actor, Action.EXECUTE_PAYMENT),
    )
