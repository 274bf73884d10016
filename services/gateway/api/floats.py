"""Floats and the ledger: open a float, replenish it, read balances and the trial balance."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from services.gateway import problems, reads
from services.gateway.api import Blueprint
from services.gateway.api.replies import command, read, require_role
from services.gateway.auth import current_actor
from services.gateway.branches import branch_by_code
from services.gateway.idempotency import idempotent
from services.gateway.schemas import ProblemSchema
from shared.contracts import catalog
from shared.contracts.money import MoneySchema

blp = Blueprint("floats", __name__, url_prefix="/api/v1", description="Floats and the ledger")


class OpenFloatSchema(Schema):
    branch = fields.String(required=True, validate=validate.Length(min=1, max=32))
    amount = fields.Nested(MoneySchema, required=True)


class ReplenishSchema(Schema):
    amount = fields.Nested(MoneySchema, required=True)
    comment = fields.String(load_default="", validate=validate.Length(max=1000))


class DecisionSchema(Schema):
    approve = fields.Boolean(required=True)
    comment = fields.String(load_default="", validate=validate.Length(max=1000))


class FloatSchema(Schema):
    account = fields.String()
    branch_id = fields.String()
    branch_code = fields.String()
    balance = fields.Nested(MoneySchema)
    held = fields.Nested(MoneySchema)
    available = fields.Nested(MoneySchema)


class FloatListSchema(Schema):
    items = fields.List(fields.Nested(FloatSchema))


class BranchFloatsSchema(Schema):
    branch_id = fields.String()
    floats = fields.List(fields.Nested(FloatSchema))


class ReplenishmentSchema(Schema):
    id = fields.String()
    branch_id = fields.String()
    amount = fields.Nested(MoneySchema)
    status = fields.String()
    requested_by = fields.String()
    requested_at = fields.String()
    comment = fields.String()
    decided_by = fields.String(allow_none=True)
    decided_at = fields.String(allow_none=True)
    decision_comment = fields.String()


class TrialBalanceSchema(Schema):
    balanced = fields.Boolean()
    totals = fields.Dict()
    cache_mismatches = fields.List(fields.String())
    negative_floats = fields.List(fields.String())
    accounts = fields.List(fields.Dict())


def _branch(code: str) -> dict[str, str] | None:
    branch = branch_by_code(code)
    if branch is None:
        return None
    return {"branch_id": branch.id, "branch_code": branch.code, "region_id": branch.region_id}


def _unknown_branch() -> Response:
    return problems.problem(404, "unknown-branch", "No branch has that code.")


@blp.route("/floats")
class Floats(MethodView):
    @blp.response(200, FloatListSchema)
    def get(self) -> Response:
        """The floats your scope covers: balance, held, available."""
        return jsonify({"items": read(reads.floats, current_actor())})

    @idempotent
    @blp.arguments(OpenFloatSchema)
    @blp.response(201, FloatSchema)
    @blp.alt_response(403, schema=ProblemSchema, description="Not treasury or admin")
    @blp.alt_response(409, schema=ProblemSchema, description="The branch has a float already")
    def post(self, data: dict[str, Any]) -> Response:
        """Open a branch's float, funded from the HQ bank account (treasury or admin)."""
        require_role("treasury", "admin")
        branch = _branch(data["branch"])
        if branch is None:
            return problems.problem(422, "unknown-branch", "No branch has that code.")
        return command(catalog.OPEN_FLOAT, {**branch, "amount": data["amount"].to_dict()}, resource="float")


@blp.route("/floats/<branch_code>")
class BranchFloat(MethodView):
    @blp.response(200, BranchFloatsSchema)
    @blp.alt_response(404, schema=ProblemSchema, description="No float for this branch in your scope")
    def get(self, branch_code: str) -> Response:
        """A branch's float status."""
        actor = current_actor()
        branch = _branch(branch_code)
        if branch is None:
            return _unknown_branch()
        items = read(reads.floats, actor, branch["branch_id"])
        if not items:
            return problems.problem(404, "not-found", "No float for this branch in your scope.")
        return jsonify({"branch_id": branch["branch_id"], "floats": items})


@blp.route("/floats/<branch_code>/replenishments")
class Replenishments(MethodView):
    @idempotent
    @blp.arguments(ReplenishSchema)
    @blp.response(201, ReplenishmentSchema)
    @blp.alt_response(403, schema=ProblemSchema, description="Not treasury")
    def post(self, data: dict[str, Any], branch_code: str) -> Response:
        """Ask for money to be moved from the bank to this float (treasury)."""
        require_role("treasury")
        branch = _branch(branch_code)
        if branch is None:
            return _unknown_branch()
        payload = {"branch_id": branch["branch_id"], "amount": data["amount"].to_dict(), "comment": data["comment"]}
        return command(catalog.REQUEST_REPLENISHMENT, payload, resource="replenishment")


@blp.route("/replenishments/<uuid:request_id>/decision")
class ReplenishmentDecision(MethodView):
    @idempotent
    @blp.arguments(DecisionSchema)
    @blp.response(200, ReplenishmentSchema)
    @blp.alt_response(403, schema=ProblemSchema, description="Not finance or CFO, or your own request")
    @blp.alt_response(409, schema=ProblemSchema, description="Decided already")
    def post(self, data: dict[str, Any], request_id: uuid.UUID) -> Response:
        """Approve (the money moves; waiting requisitions are reserved) or reject (finance, CFO)."""
        require_role("finance", "cfo")
        payload = {"id": str(request_id), "approve": data["approve"], "comment": data["comment"]}
        return command(catalog.DECIDE_REPLENISHMENT, payload, resource="replenishment")


@blp.route("/ledger/trial-balance")
class TrialBalance(MethodView):
    @blp.response(200, TrialBalanceSchema)
    @blp.alt_response(403, schema=ProblemSchema, description="Not finance, CFO, auditor or admin")
    def get(self) -> Response:
        """Every account's totals, and whether debits equal credits (posted and pending)."""
        require_role("finance", "cfo", "auditor", "admin")
        return jsonify(read(reads.trial_balance))
