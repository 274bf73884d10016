"""``/api/v1/system/status``: how far behind the services and the projections are."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from services.gateway import backlog
from services.gateway.access import permits
from services.gateway.api import Blueprint, ctx
from services.gateway.schemas import SystemStatusSchema
from shared.contracts.permissions import Action

blp = Blueprint("system", __name__, url_prefix="/api/v1/system", description="Operations")


@blp.route("/status")
class SystemStatus(MethodView):
    @permits(Action.READ_SYSTEM)
    @blp.response(200, SystemStatusSchema)
    @blp.problem(403, "Not admin, auditor, finance, CFO or treasury")
    def get(self) -> Any:
        """Messages waiting per queue, the bound past which new work is refused, and the
        projection lag (service commit to gateway projection) over the last minute."""
        context = ctx()
        return backlog.status(context.backlog, context.db)
