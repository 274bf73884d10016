"""``/api/v1/system/status``: how far behind the services and the projections are."""

from __future__ import annotations

from flask import Response, jsonify
from flask.views import MethodView
from marshmallow import Schema, fields

from services.gateway import backlog
from services.gateway.api import Blueprint, ctx
from services.gateway.api.replies import require_role

blp = Blueprint("system", __name__, url_prefix="/api/v1/system", description="Operations")


class LagSchema(Schema):
    samples = fields.Integer()
    p50_ms = fields.Float(allow_none=True)
    p95_ms = fields.Float(allow_none=True)
    max_ms = fields.Float(allow_none=True)


class SystemStatusSchema(Schema):
    queues = fields.Dict(keys=fields.String(), values=fields.Integer())
    queue_limit = fields.Integer()
    projection_lag = fields.Nested(LagSchema)


@blp.route("/status")
class SystemStatus(MethodView):
    @blp.response(200, SystemStatusSchema)
    def get(self) -> Response:
        """Messages waiting per queue, the bound past which new work is refused, and the
        projection lag (service commit to gateway projection) over the last minute."""
        require_role("admin", "auditor", "finance", "cfo", "treasury")
        context = ctx()
        return jsonify(backlog.status(context.backlog, context.db))
