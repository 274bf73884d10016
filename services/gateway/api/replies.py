"""From a service's reply to the HTTP answer: one way for every view."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from services.gateway import problems
from services.gateway.api import ctx
from services.gateway.api.commands import accepted
from services.gateway.auth import current_actor
from shared.contracts.catalog import TaskSpec

QUERY_TIMEOUT_SECONDS = 5.0


def reply_response(reply: dict[str, Any], location: str | None = None) -> Response:
    """A service's reply as JSON (its status) or as a problem."""
    if reply["status"] >= 400:
        return problems.from_reply(reply)
    response = jsonify(reply["body"])
    response.status_code = reply["status"]
    if location:
        response.headers["Location"] = location
    return response


def command(spec: TaskSpec, payload: dict[str, Any], resource: str = "requisition") -> Response:
    """Send a command and answer with its outcome, or 202 and a status URL if it is slow."""
    actor = current_actor()
    context = ctx()
    message_id, reply = context.bus.call(spec, payload, actor, context.settings.command_wait_seconds)
    if reply is None:
        return accepted(message_id, actor, resource)
    return reply_response(reply)


def query(spec: TaskSpec, payload: dict[str, Any]) -> Response:
    """Ask a service and answer with what it says (504 if it does not answer in time)."""
    reply = query_reply(spec, payload)
    if reply is None:
        return problems.problem(504, "service-timeout", f"The {spec.service} service did not answer in time.")
    return reply_response(reply)


def query_reply(spec: TaskSpec, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The raw reply of a query, or None after the timeout."""
    return ctx().bus.ask([(spec, payload)], current_actor(), QUERY_TIMEOUT_SECONDS)[0]


def require_role(*roles: str) -> dict[str, Any]:
    """The actor, if they hold one of ``roles``; 403 otherwise (services check again)."""
    from flask_smorest import abort

    actor = current_actor()
    if not set(actor["roles"]) & set(roles):
        abort(403, message=f"This needs one of the roles: {', '.join(roles)}.")
    return actor
