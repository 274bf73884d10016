"""``/api/v1/dashboard``: treasury's and finance's day at a glance (``services.gateway.dashboard``)."""

from __future__ import annotations

import json
from typing import Any

from flask import Response
from flask.views import MethodView

from services.gateway import dashboard as board
from services.gateway.access import permits
from services.gateway.api import Blueprint, ctx
from services.gateway.auth import current_actor
from services.gateway.branches import branch
from services.gateway.schemas import DashboardQuerySchema, DashboardSchema
from shared.contracts.permissions import Action

blp = Blueprint("dashboard", __name__, url_prefix="/api/v1/dashboard", description="Dashboard")


@blp.route("")
class Dashboard(MethodView):
    @permits(Action.READ_DASHBOARD)
    @blp.arguments(DashboardQuerySchema, location="query")
    @blp.response(200, DashboardSchema)
    @blp.problem(403, "Not treasury, finance or the CFO")
    @blp.problem(422, "No branch has that code")
    def get(self, args: dict[str, Any]) -> Any:
        """Per branch and in total: each float against its levels and the days left at the last
        30 days' spend; requisitions waiting for approval, for funds, to be paid; payments
        executing, failed and paid today; unresolved alerts by severity; the latest payments;
        the balance over 30 days and the spend by category. At most 5 s behind the projections."""
        branch_id = branch(args["branch"]).id if args.get("branch") else None
        body = board.dashboard_json(ctx().db.reader, current_actor(), branch_id, _dumped)
        return Response(body, mimetype="application/json")


def _dumped(dashboard: dict[str, Any]) -> str:
    return json.dumps(DashboardSchema().dump(dashboard), separators=(",", ":"))


def read_dashboard(branch_code: str | None = None) -> dict[str, Any]:
    """The API's and the page's one read of the dashboard (one branch's, when given)."""
    branch_id = branch(branch_code).id if branch_code else None
    return board.dashboard(ctx().db.reader, current_actor(), branch_id)
