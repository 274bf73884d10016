"""Administration: requisition caps and alerts."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from services.gateway import reads
from services.gateway.access import permits
from services.gateway.api import Blueprint
from services.gateway.api.replies import Answer, command, found, read
from services.gateway.auth import current_actor
from services.gateway.branches import branch
from services.gateway.schemas import AlertListSchema, CapListSchema, CapsSchema
from shared.contracts import catalog, instances
from shared.contracts.payloads import SetCapsPayload
from shared.contracts.permissions import Action

blp = Blueprint("admin", __name__, url_prefix="/api/v1", description="Caps and alerts")


@blp.route("/caps")
class Caps(MethodView):
    @permits(Action.READ_CAPS)
    @blp.response(200, CapListSchema)
    @blp.problem(403, "Not admin, finance, CFO or auditor")
    @blp.problem(404, "No caps have been published yet")
    def get(self) -> Any:
        """The caps checked at submission."""
        return found(read(reads.document, "caps"), "caps")

    @permits(Action.SET_CAPS)
    @blp.arguments(CapsSchema)
    @blp.response(200, CapListSchema)
    @blp.accepted()
    @blp.problem(400, "Malformed body")
    @blp.problem(403, "Not an admin")
    @blp.problem(422, "Unknown branch or an incomplete cap")
    def put(self, data: dict[str, Any]) -> Answer:
        """Replace the caps (admin). A cap's ``branch_id`` may be given as a branch code."""
        for cap in data["caps"]:
            if cap.get("branch_id"):
                cap["branch_id"] = branch(cap["branch_id"]).id
        return command(catalog.SET_CAPS, instances.schema(SetCapsPayload).dump(data), resource="caps")


@blp.route("/alerts")
class Alerts(MethodView):
    @permits(Action.READ_ALERTS)
    @blp.response(200, AlertListSchema)
    @blp.problem(403, "Not treasury, finance, CFO, auditor, admin or a manager")
    def get(self) -> Any:
        """Alerts (awaiting funds, failed payments) in your scope, newest first."""
        return read(reads.alerts, current_actor())
