"""Floats and the ledger: open a float, replenish it, read balances and the trial balance."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from services.gateway import problems, reads
from services.gateway.access import permits
from services.gateway.api import Blueprint
from services.gateway.api.replies import Answer, command, read, read_consistent
from services.gateway.auth import current_actor
from services.gateway.branches import branch
from services.gateway.idempotency import idempotent
from services.gateway.schemas import (
    BranchFloatsSchema,
    DecisionSchema,
    FloatListSchema,
    FloatSchema,
    OpenFloatSchema,
    ReplenishmentListSchema,
    ReplenishmentQuerySchema,
    ReplenishmentSchema,
    ReplenishSchema,
    TrialBalanceSchema,
)
from shared.contracts import catalog
from shared.contracts.permissions import Action

blp = Blueprint("floats", __name__, url_prefix="/api/v1", description="Floats and the ledger")

# A branch code is a path segment: no slash, and (as all text) no NUL.
BRANCH_CODE = {
    "in": "path",
    "name": "branch_code",
    "description": "Branch code, e.g. NBO-CBD",
    "schema": {"type": "string", "minLength": 1, "pattern": "^[^/\\x00]+$"},
}


@blp.route("/floats")
class Floats(MethodView):
    @permits(Action.READ_FLOATS)
    @blp.response(200, FloatListSchema)
    def get(self) -> Any:
        """The floats your scope covers: balance, held, available."""
        return {"items": read(reads.floats, current_actor())}

    @permits(Action.OPEN_FLOAT)
    @idempotent
    @blp.arguments(OpenFloatSchema)
    @blp.response(201, FloatSchema)
    @blp.accepted()
    @blp.problem(400, "Malformed body, or a malformed Idempotency-Key")
    @blp.problem(403, "Not treasury or admin")
    @blp.problem(409, "The branch has a float already, or a request with this Idempotency-Key is in flight")
    @blp.problem(422, "No branch has that code, or the Idempotency-Key was used for another request")
    def post(self, data: dict[str, Any]) -> Answer:
        """Open a branch's float, funded from the HQ bank account (treasury or admin)."""
        return command(
            catalog.OPEN_FLOAT,
            {**branch(data["branch"]).as_payload(), "amount": data["amount"].to_dict()},
            resource="float",
        )


@blp.route("/floats/<branch_code>", parameters=[BRANCH_CODE])
class BranchFloat(MethodView):
    @permits(Action.READ_FLOATS)
    @blp.response(200, BranchFloatsSchema)
    @blp.problem(400, "The branch code holds a NUL character")
    @blp.problem(404, "No such branch, or no float for it in your scope")
    def get(self, branch_code: str) -> Any:
        """A branch's float status."""
        actor = current_actor()
        branch_id = branch(branch_code, in_path=True).id
        items = read(reads.floats, actor, branch_id)
        if not items:
            return problems.problem(404, "not-found", "No float for this branch in your scope.")
        return {"branch_id": branch_id, "floats": items}


@blp.route("/floats/<branch_code>/replenishments", parameters=[BRANCH_CODE])
class Replenishments(MethodView):
    @permits(Action.REQUEST_REPLENISHMENT)
    @idempotent
    @blp.arguments(ReplenishSchema)
    @blp.response(201, ReplenishmentSchema)
    @blp.accepted()
    @blp.problem(400, "Malformed body, or a malformed Idempotency-Key")
    @blp.problem(403, "Not treasury")
    @blp.problem(404, "No such branch, or it has no float in that currency")
    @blp.problem(409, "A request with this Idempotency-Key is in flight")
    @blp.problem(422, "The Idempotency-Key was used for another request")
    def post(self, data: dict[str, Any], branch_code: str) -> Answer:
        """Ask for money to be moved from the bank to this float (treasury)."""
        return request_replenishment(branch(branch_code, in_path=True).id, data)


@blp.route("/replenishments")
class ReplenishmentList(MethodView):
    @permits(Action.READ_FLOATS)
    @blp.arguments(ReplenishmentQuerySchema, location="query")
    @blp.response(200, ReplenishmentListSchema)
    @blp.problem(400, "An unknown status or a limit out of range")
    def get(self, args: dict[str, Any]) -> Any:
        """Replenishment requests of the floats in your scope, newest first (``status`` narrows it)."""
        return {"items": read(reads.replenishments, current_actor(), args.get("status"), args["limit"])}


@blp.route("/replenishments/<uuid:request_id>/decision")
class ReplenishmentDecision(MethodView):
    @permits(Action.DECIDE_REPLENISHMENT)
    @idempotent
    @blp.arguments(DecisionSchema)
    @blp.response(200, ReplenishmentSchema)
    @blp.accepted()
    @blp.problem(400, "Malformed body, or a malformed Idempotency-Key")
    @blp.problem(403, "Not finance or CFO, or your own request")
    @blp.problem(404, "No such replenishment request")
    @blp.problem(409, "Decided already, or a request with this Idempotency-Key is in flight")
    @blp.problem(422, "The Idempotency-Key was used for another request")
    def post(self, data: dict[str, Any], request_id: uuid.UUID) -> Answer:
        """Approve (the money moves; waiting requisitions are reserved) or reject (finance, CFO)."""
        return decide_replenishment(request_id, data)


def request_replenishment(branch_id: str, data: dict[str, Any]) -> Answer:
    """Treasury asks for ``data``'s amount (``ReplenishSchema``) for the branch's float."""
    payload = {"branch_id": branch_id, "amount": data["amount"].to_dict(), "comment": data["comment"]}
    return command(catalog.REQUEST_REPLENISHMENT, payload, resource="replenishment")


def decide_replenishment(request_id: uuid.UUID, data: dict[str, Any]) -> Answer:
    """Finance or the CFO approves or rejects a request (``DecisionSchema``)."""
    payload = {"id": str(request_id), "approve": data["approve"], "comment": data["comment"]}
    return command(catalog.DECIDE_REPLENISHMENT, payload, resource="replenishment")


@blp.route("/ledger/trial-balance")
class TrialBalance(MethodView):
    @permits(Action.READ_LEDGER)
    @blp.response(200, TrialBalanceSchema)
    @blp.problem(403, "Not finance, CFO, auditor or admin")
    def get(self) -> Any:
        """Every account's totals, and whether debits equal credits (posted and pending)."""
        return read_consistent(reads.trial_balance)
