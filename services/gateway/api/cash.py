"""Cash counts: a branch's custodian (or treasury) counts the float's till by denomination; the
ledger compares it with the book balance; finance (the CFO above the limit) decides a variance."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask.views import MethodView

from services.gateway import problems, reads
from services.gateway.access import permits
from services.gateway.api import Blueprint
from services.gateway.api.floats import BRANCH_CODE
from services.gateway.api.replies import Answer, command, read
from services.gateway.auth import current_actor
from services.gateway.branches import branch
from services.gateway.idempotency import idempotent
from services.gateway.schemas import (
    DENOMINATION,
    CashCountCreateSchema,
    CashCountListSchema,
    CashCountQuerySchema,
    CashCountSchema,
    DecisionSchema,
)
from shared.contracts import catalog
from shared.contracts.permissions import Action

blp = Blueprint("cash", __name__, url_prefix="/api/v1", description="Cash counts")


@blp.route("/floats/<branch_code>/cash-counts", parameters=[BRANCH_CODE])
class BranchCashCounts(MethodView):
    @permits(Action.RECORD_CASH_COUNT)
    @idempotent
    @blp.arguments(CashCountCreateSchema)
    @blp.response(201, CashCountSchema)
    @blp.accepted()
    @blp.problem(400, "Malformed body, or a malformed Idempotency-Key")
    @blp.problem(403, "Not the branch's custodian (a manager of it) or treasury")
    @blp.problem(404, "No such branch, or it has no float in that currency")
    @blp.problem(409, "A request with this Idempotency-Key is in flight")
    @blp.problem(422, "A denomination the currency has not, or the Idempotency-Key was used for another request")
    def post(self, data: dict[str, Any], branch_code: str) -> Answer:
        """Count the float's till: the variance against the book balance now waits for finance."""
        return record_cash_count(branch(branch_code, in_path=True).id, data)


@blp.route("/cash-counts")
class CashCounts(MethodView):
    @permits(Action.READ_FLOATS)
    @blp.arguments(CashCountQuerySchema, location="query")
    @blp.response(200, CashCountListSchema)
    @blp.problem(400, "An unknown status")
    @blp.problem(422, "No branch has that code")
    def get(self, args: dict[str, Any]) -> Any:
        """Cash counts in your scope, newest first (one branch's, or one status's)."""
        branch_id = branch(args["branch"]).id if args.get("branch") else None
        return {"items": read(reads.cash_counts, current_actor(), branch_id, args.get("status"))}


@blp.route("/cash-counts/<uuid:count_id>/decision")
class VarianceDecision(MethodView):
    @permits(Action.DECIDE_VARIANCE)
    @idempotent
    @blp.arguments(DecisionSchema)
    @blp.response(200, CashCountSchema)
    @blp.accepted()
    @blp.problem(400, "Malformed body, or a malformed Idempotency-Key")
    @blp.problem(403, "Not finance or the CFO, your own count, or above the limit and not the CFO")
    @blp.problem(404, "No such cash count")
    @blp.problem(409, "Nothing to decide, or a request with this Idempotency-Key is in flight")
    @blp.problem(422, "The shortage is more than the float has, or the Idempotency-Key was used for another request")
    def post(self, data: dict[str, Any], count_id: uuid.UUID) -> Answer:
        """Approve (post it to the branch's over/short account) or reject a count's variance."""
        return decide_variance(count_id, data)


def record_cash_count(branch_id: str, data: dict[str, Any]) -> Answer:
    """The API's and the page's one path to record a count (``CashCountCreateSchema``)."""
    wrong = sorted(d for d in data["denominations"] if not re.fullmatch(DENOMINATION, d))
    if wrong:
        detail = f"Not a denomination: {', '.join(repr(d[:20]) for d in wrong[:3])} (write one as 1000 or 0.50)."
        return problems.problem(422, "invalid-denomination", detail)
    payload = {"branch_id": branch_id, **data}
    return command(catalog.RECORD_CASH_COUNT, payload, resource="cash-count")


def decide_variance(count_id: uuid.UUID, data: dict[str, Any]) -> Answer:
    """The API's and the page's one path to decide a variance (``DecisionSchema``)."""
    payload = {"id": str(count_id), "approve": data["approve"], "comment": data["comment"]}
    return command(catalog.DECIDE_VARIANCE, payload, resource="cash-count")
