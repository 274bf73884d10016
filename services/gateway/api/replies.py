"""From a service's reply to the HTTP answer: one way for every view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response

from services.gateway import problems
from services.gateway.api import ctx
from services.gateway.api.commands import accepted, deferred_writes
from services.gateway.auth import current_actor
from services.gateway.readmodels import apply_reply_snapshots
from shared.contracts.catalog import TaskSpec
from shared.contracts.envelope import Actor

# What a view answers: a body for its response schema to dump, with its status and headers,
# or a ``Response`` passed through as it is (a problem, a 202).
Answer = Response | tuple[Any, int, dict[str, str]]


def reply_response(reply: dict[str, Any], location: str | None = None) -> Answer:
    """A service's reply: its body and status, for the view's response schema to dump (with a
    ``Location`` when one is given), or a problem.

    The snapshots of what the command changed are projected first, so a GET that follows this
    answer reads the change (read-your-writes without waiting for the projector).
    """
    snapshots = reply.get("snapshots") or []
    deferred = deferred_writes()
    if deferred is not None:
        deferred.snapshots.extend(snapshots)  # projected in the commit that stores the answer
    else:
        apply_reply_snapshots(ctx().db.uow, snapshots)
    if reply["status"] >= 400:
        return problems.from_reply(reply)
    return reply["body"], int(reply["status"]), ({"Location": location} if location else {})


class Behind(Exception):
    """The services are too far behind to take more work now (answered 503 with Retry-After)."""

    def __init__(self, queue: str) -> None:
        super().__init__(queue)
        self.queue = queue

    def response(self) -> Response:
        answer = problems.problem(
            503,
            "service-overloaded",
            f"The system is behind ({self.queue} has more waiting than it takes on); retry shortly.",
        )
        answer.headers["Retry-After"] = str(problems.RETRY_AFTER_SECONDS)
        return answer


def call(spec: TaskSpec, payload: dict[str, Any], actor: Actor) -> tuple[str, dict[str, Any] | None]:
    """Send a command and wait briefly for its reply, unless a queue is past its bound
    (:class:`Behind`): accepting work the services cannot finish helps nobody."""
    context = ctx()
    queue = context.backlog.behind()
    if queue is not None:
        raise Behind(queue)
    return context.bus.call(spec, payload, actor, context.settings.command_wait_seconds)  # type: ignore[no-any-return]


def command(spec: TaskSpec, payload: dict[str, Any], resource: str = "requisition") -> Answer:
    """Send a command and answer with its outcome, or 202 and a status URL if it is slow."""
    actor = current_actor()
    try:
        message_id, reply = call(spec, payload, actor)
    except Behind as behind:
        return behind.response()
    if reply is None:
        return accepted(message_id, actor, resource)
    return reply_response(reply)


def read(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one read of ``services.gateway.reads`` (a single statement) on the gateway's database."""
    with ctx().db.reader() as connection:
        return fn(connection, *args, **kwargs)


def read_consistent(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a read of several statements that must agree, in one transaction."""
    with ctx().db.uow() as uow:
        return fn(uow.session, *args, **kwargs)


def found(body: Any, what: str) -> Any:
    """The body, for the view's response schema to dump, or 404 (absent and out of scope look alike)."""
    if body is None:
        return problems.problem(404, "not-found", f"No {what} in your scope.")
    return body
