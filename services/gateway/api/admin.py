"""Administration: requisition caps and alerts."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask.views import MethodView

from services.gateway import problems, reads
from services.gateway.api import Blueprint
from services.gateway.api.replies import command, found, read, require_role
from services.gateway.branches import branch_by_code
from services.gateway.schemas import AlertListSchema, CapsSchema, ProblemSchema
from shared.contracts import catalog
from shared.contracts.payloads import SetCapsPayload

blp = Blueprint("admin", __name__, url_prefix="/api/v1", description="Caps and alerts")


@blp.route("/caps")
class Caps(MethodView):
    @blp.response(200, CapsSchema)
    def get(self) -> Response:
        """The caps checked at submission."""
        require_role("admin", "finance", "cfo", "auditor")
        return found(read(reads.document, "caps"), "caps")

    @blp.arguments(CapsSchema)
    @blp.response(200, CapsSchema)
    @blp.alt_response(422, schema=ProblemSchema, description="Unknown branch or an incomplete cap")
    def put(self, data: dict[str, Any]) -> Response:
        """Replace the caps (admin). A cap's ``branch_id`` may be given as a branch code."""
        require_role("admin")
        for cap in data["caps"]:
            if cap.get("branch_id"):
                branch = branch_by_code(cap["branch_id"])
                if branch is None:
                    return problems.problem(422, "unknown-branch", f"No branch has code {cap['branch_id']!r}.")
                cap["branch_id"] = branch.id
        return command(catalog.SET_CAPS, SetCapsPayload().dump(data), resource="caps")


@blp.route("/alerts")
class Alerts(MethodView):
    @blp.response(200, AlertListSchema)
    def get(self) -> Response:
        """Alerts (awaiting funds, failed payments) in your scope, newest first."""
        actor = require_role("treasury", "finance", "cfo", "auditor", "admin", "branch_manager", "regional_manager")
        return jsonify(read(reads.alerts, actor))
