"""``/api/v1/requisitions``: submit and read requisitions."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify, url_for
from flask.views import MethodView

from services.gateway import identity, problems
from services.gateway.api import Blueprint, ctx
from services.gateway.api.commands import accepted
from services.gateway.auth import current_actor
from services.gateway.schemas import AcceptedSchema, ProblemSchema, RequisitionCreateSchema, RequisitionSchema
from shared.contracts import catalog
from shared.contracts.payloads import SubmitRequisitionPayload

blp = Blueprint("requisitions", __name__, url_prefix="/api/v1/requisitions", description="Requests for money")

QUERY_TIMEOUT_SECONDS = 5.0


@blp.route("")
class Requisitions(MethodView):
    @blp.arguments(RequisitionCreateSchema)
    @blp.response(201, RequisitionSchema)
    @blp.alt_response(202, schema=AcceptedSchema, description="Accepted; the outcome is not known yet")
    @blp.alt_response(400, schema=ProblemSchema, description="Malformed body")
    @blp.alt_response(403, schema=ProblemSchema, description="Not a member of the branch")
    @blp.alt_response(422, schema=ProblemSchema, description="A business rule refused it")
    def post(self, data: dict[str, Any]) -> Response:
        """Submit a requisition."""
        actor = current_actor()
        context = ctx()
        with context.db.uow() as uow:
            branch = identity.branch_by_code(uow.session, data.pop("branch"))
            if branch is None:
                return problems.problem(422, "unknown-branch", "No branch has that code.")
            data.update(
                branch_id=str(branch.id),
                branch_code=branch.code,
                region_id=str(branch.region_id),
                origin="head_office" if branch.is_head_office else "branch",
            )
        payload = SubmitRequisitionPayload().dump(data)
        message_id, reply = context.bus.call(
            catalog.SUBMIT_REQUISITION, payload, actor, context.settings.command_wait_seconds
        )
        if reply is None:
            return accepted(message_id, actor, "requisition")
        if reply["status"] != 201:
            return problems.from_reply(reply)
        response = jsonify(reply["body"])
        response.status_code = 201
        response.headers["Location"] = url_for("requisitions.Requisition", requisition_id=reply["body"]["id"])
        return response


@blp.route("/<uuid:requisition_id>")
class Requisition(MethodView):
    @blp.response(200, RequisitionSchema)
    @blp.alt_response(404, schema=ProblemSchema, description="No such requisition in your scope")
    def get(self, requisition_id: uuid.UUID) -> Response:
        """A requisition, its history and its approval case."""
        actor = current_actor()
        bus = ctx().bus
        payload = {"id": str(requisition_id)}
        ids = [bus.send(catalog.GET_REQUISITION, payload, actor), bus.send(catalog.GET_APPROVAL_CASE, payload, actor)]
        requisition, case = bus.wait(ids, QUERY_TIMEOUT_SECONDS)
        if requisition is None:
            return problems.problem(504, "service-timeout", "The requisition service did not answer in time.")
        if requisition["status"] != 200:
            return problems.from_reply(requisition)
        body = dict(requisition["body"])
        body["approval"] = case["body"] if case is not None and case["status"] == 200 else None
        return jsonify(body)
