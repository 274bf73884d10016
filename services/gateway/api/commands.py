"""``/api/v1/commands``: the outcome of a command that took longer than the request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from flask import Response, g, has_app_context, jsonify, url_for
from flask.views import MethodView
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.gateway import problems
from services.gateway.access import permits
from services.gateway.api import Blueprint, ctx
from services.gateway.auth import current_actor
from services.gateway.models import PendingCommand
from services.gateway.schemas import AcceptedSchema, CommandStatusSchema
from services.gateway.sessions import Stage
from shared.contracts import instances
from shared.contracts.envelope import Actor
from shared.contracts.permissions import Action
from shared.db.types import utcnow
from shared.db.upsert import insert

blp = Blueprint("commands", __name__, url_prefix="/api/v1/commands", description="Command status")

# Set by the Idempotency-Key wrapper: where the views leave what is written in the same commit
# as the stored answer instead of a transaction of its own.
DEFERRED_ATTRIBUTE = "deferred_writes"


@dataclass
class Deferred:
    """What a keyed request writes with its stored answer: ``accepted``'s pending-command rows,
    and the snapshots a reply carries (projected before the answer leaves, as ever)."""

    pending: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)


def deferred_writes() -> Deferred | None:
    """This request's deferred writes, if the ``Idempotency-Key`` wrapper takes them."""
    return g.get(DEFERRED_ATTRIBUTE) if has_app_context() else None


def status_path(message_id: str) -> str:
    """The status URL of a command."""
    return url_for("commands.CommandStatus", message_id=message_id)


def accepted(message_id: str, actor: Actor, resource: str) -> Response:
    """202 with a status URL; only the sender may read that status."""
    row = {
        "message_id": uuid.UUID(message_id),
        "user_id": uuid.UUID(actor.user_id),
        "resource": resource,
        "created_at": utcnow(),
    }
    deferred = deferred_writes()
    if deferred is not None:
        deferred.pending.append(row)
    else:
        with ctx().db.uow() as uow:
            record_pending(uow.session, [row])
            uow.commit()
    status_url = status_path(message_id)
    accepted = {"state": "pending", "message_id": message_id, "status_url": status_url}
    response = jsonify(instances.schema(AcceptedSchema).dump(accepted))
    response.status_code = 202
    response.headers["Location"] = status_url
    return response


def record_pending(session: Session, rows: list[dict[str, Any]]) -> None:
    """Remember who may read these commands' status; the caller commits. A row that exists stays
    (an ``Idempotency-Key`` retry answers 202 again for the same command)."""
    if rows:
        session.execute(insert(session, PendingCommand).values(rows).on_conflict_do_nothing())


@blp.route("/<uuid:message_id>")
class CommandStatus(MethodView):
    @permits(Action.READ_COMMAND_STATUS, stages=(Stage.ENROL, Stage.SIGNED_IN))
    @blp.response(200, CommandStatusSchema, description="Done: the status and body (or problem) it answered")
    @blp.alt_response(202, schema=CommandStatusSchema, description="Still pending", success=True)
    @blp.problem(404, "Unknown command, or not yours")
    def get(self, message_id: uuid.UUID) -> Any:
        """Whether a command has finished, and its outcome."""
        outcome = command_outcome(message_id, current_actor())
        if outcome is None:
            return problems.problem(404, "not-found", "No such command.")
        if outcome is PENDING:
            return {"state": "pending", "status": None}, 202
        return {"state": "done", **outcome}


PENDING: dict[str, Any] = {}


def command_outcome(message_id: uuid.UUID, actor: Actor) -> dict[str, Any] | None:
    """A command's outcome (its ``status``, ``body`` and ``problem``), :data:`PENDING` while it
    runs, or None when it is unknown or another user's (the two look alike)."""
    context = ctx()
    # Read the column, not the entity: the unit of work's rollback expires loaded objects,
    # and an expired object read after its session closed raises DetachedInstanceError.
    with context.db.uow() as uow:
        owner = uow.session.scalar(select(PendingCommand.user_id).where(PendingCommand.message_id == message_id))
    if owner is None or str(owner) != actor.user_id:
        return None
    reply = context.bus.reply(str(message_id))
    if reply is None:
        return PENDING
    return {"status": reply["status"], "body": reply.get("body"), "problem": reply.get("problem")}
