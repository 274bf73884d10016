"""``/api/v1/alerts``: what needs a person's attention, raised by the service that owns the
fact (a float low, a payment failed, an approval overdue...), folded per kind and subject,
acknowledged and resolved here (the requisition service keeps them)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from services.gateway import problems, reads
from services.gateway.access import permits
from services.gateway.api import Blueprint
from services.gateway.api.replies import Answer, command, read
from services.gateway.auth import current_actor
from services.gateway.idempotency import idempotent
from services.gateway.schemas import AlertListSchema, AlertQuerySchema, AlertResolutionSchema, AlertSchema
from shared.contracts import catalog
from shared.contracts.permissions import Action

blp = Blueprint("alerts", __name__, url_prefix="/api/v1/alerts", description="Alerts")


@blp.route("")
class Alerts(MethodView):
    @permits(Action.READ_ALERTS)
    @blp.arguments(AlertQuerySchema, location="query")
    @blp.response(200, AlertListSchema)
    @blp.problem(400, "An unknown status or severity, or a limit out of range")
    @blp.problem(403, "Not treasury, finance, CFO, auditor, admin or a manager")
    def get(self, args: dict[str, Any]) -> Any:
        """Alerts in your scope, last seen first (unresolved unless ``status`` says otherwise),
        and the unresolved ones counted by severity."""
        return read(reads.alerts, current_actor(), args["status"], args.get("severity"), args["limit"])


@blp.route("/<int:alert_id>/acknowledgement")
class Acknowledgement(MethodView):
    @permits(Action.HANDLE_ALERTS)
    @idempotent
    @blp.response(200, AlertSchema)
    @blp.accepted()
    @blp.problem(400, "A malformed Idempotency-Key")
    @blp.problem(403, "Not treasury, finance, CFO, admin or a manager")
    @blp.problem(404, "No such alert in your scope")
    @blp.problem(409, "Resolved already, or a request with this Idempotency-Key is in flight")
    @blp.problem(422, "The Idempotency-Key was used for another request")
    def post(self, alert_id: int) -> Answer:
        """Someone is on it (it stays listed until resolved)."""
        return acknowledge_alert(alert_id)


@blp.route("/<int:alert_id>/resolution")
class Resolution(MethodView):
    @permits(Action.HANDLE_ALERTS)
    @idempotent
    @blp.arguments(AlertResolutionSchema)
    @blp.response(200, AlertSchema)
    @blp.accepted()
    @blp.problem(400, "No note, or a malformed body")
    @blp.problem(403, "Not treasury, finance, CFO, admin or a manager")
    @blp.problem(404, "No such alert in your scope")
    @blp.problem(409, "Resolved already, or a request with this Idempotency-Key is in flight")
    @blp.problem(422, "The Idempotency-Key was used for another request")
    def post(self, data: dict[str, Any], alert_id: int) -> Answer:
        """Done with it: say what was done."""
        return resolve_alert(alert_id, data["note"])


# Alert ids are 64-bit; a larger number in the path names no alert.
MAX_ID = 2**63 - 1


def _no_such(alert_id: int) -> Answer | None:
    return problems.problem(404, "not-found", "No such alert.") if not 1 <= alert_id <= MAX_ID else None


def acknowledge_alert(alert_id: int) -> Answer:
    """The API's and the pages' one path to acknowledge an alert."""
    if (refused := _no_such(alert_id)) is not None:
        return refused
    return command(catalog.ACKNOWLEDGE_ALERT, {"id": alert_id, "note": ""}, resource="alert")


def resolve_alert(alert_id: int, note: str) -> Answer:
    """The API's and the pages' one path to resolve an alert with a note."""
    if (refused := _no_such(alert_id)) is not None:
        return refused
    return command(catalog.RESOLVE_ALERT, {"id": alert_id, "note": note}, resource="alert")
