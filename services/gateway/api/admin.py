"""Administration: requisition caps."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from services.gateway import reads
from services.gateway.access import permits
from services.gateway.api import Blueprint
from services.gateway.api.replies import Answer, command, found, read
from services.gateway.branches import branch
from services.gateway.schemas import CapListSchema, CapsSchema
from shared.contracts import catalog, instances
from shared.contracts.payloads import SetCapsPayload
from shared.contracts.permissions import Action

blp = Blueprint("admin", __name__, url_prefix="/api/v1", description="Caps")


def set_caps(data: dict[str, Any]) -> Answer:
    """Replace the caps (``CapsSchema``; a cap's ``branch_id`` may be a branch code): the API's and the pages' one path.

    An unknown branch code raises :class:`~services.gateway.branches.UnknownBranch` (422).
    """
    for cap in data["caps"]:
        if cap.get("branch_id"):
            cap["branch_id"] = branch(cap["branch_id"]).id
    return command(catalog.SET_CAPS, instances.schema(SetCapsPayload).dump(data), resource="caps")


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
        return set_caps(data)
