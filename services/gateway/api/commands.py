"""``/api/v1/commands``: the outcome of a command that took longer than the request."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify, url_for
from flask.views import MethodView

from services.gateway import problems
from services.gateway.api import Blueprint, ctx
from services.gateway.auth import current_actor
from services.gateway.models import PendingCommand
from services.gateway.schemas import CommandStatusSchema, ProblemSchema
from shared.db.types import utcnow

blp = Blueprint("commands", __name__, url_prefix="/api/v1/commands", description="Command status")


def accepted(message_id: str, actor: dict[str, Any], resource: str) -> Response:
    """202 with a status URL; only the sender may read that status."""
    with ctx().db.uow() as uow:
        uow.session.add(
            PendingCommand(
                message_id=uuid.UUID(message_id),
                user_id=uuid.UUID(actor["user_id"]),
                resource=resource,
                created_at=utcnow(),
            )
        )
        uow.commit()
    status_url = url_for("commands.CommandStatus", message_id=message_id)
    response = jsonify(state="pending", message_id=message_id, status_url=status_url)
    response.status_code = 202
    response.headers["Location"] = status_url
    return response


@blp.route("/<uuid:message_id>")
class CommandStatus(MethodView):
    @blp.response(200, CommandStatusSchema)
    @blp.alt_response(404, schema=ProblemSchema, description="Unknown command, or not yours")
    def get(self, message_id: uuid.UUID) -> Response:
        """Whether a command has finished, and its outcome."""
        actor = current_actor()
        context = ctx()
        with context.db.uow() as uow:
            pending = uow.session.get(PendingCommand, message_id)
        if pending is None or str(pending.user_id) != actor["user_id"]:
            return problems.problem(404, "not-found", "No such command.")
        reply = context.bus.reply(str(message_id))
        if reply is None:
            response = jsonify(state="pending", status=None)
            response.status_code = 202
            return response
        return jsonify(state="done", status=reply["status"], body=reply.get("body"), problem=reply.get("problem"))
