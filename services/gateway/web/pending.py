"""A command still running when its page answered (the API's 202): a page that says so and
follows it to its end.

With htmx (vendored) the status part of the page asks again every second and, once the
command is done, the browser loads the page's own address, which then answers as the command
did: the requisition it was about (or that it created), or its page with the refusal in words.
Without script the page refreshes itself every two seconds.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, redirect, request, url_for

from services.gateway.access import permits
from services.gateway.api.commands import PENDING, command_outcome
from services.gateway.auth import current_actor
from services.gateway.web import bp, page
from services.gateway.web.requisitions import THEN, requisition_page
from shared.contracts.permissions import Action


@bp.get("/commands/<uuid:message_id>")
@permits(Action.READ_COMMAND_STATUS, sessions_only=True)
def pending(message_id: uuid.UUID) -> Any:
    outcome = command_outcome(message_id, current_actor())
    if outcome is None:
        return page("message.html", 404, title="Not found", text="There is no such request of yours.")
    here = url_for("web.pending", message_id=message_id, **request.args)
    if outcome is PENDING:
        template = "pending_status.html" if request.headers.get("HX-Request") else "pending.html"
        return page(template, 202, poll_url=here)
    if request.headers.get("HX-Request"):  # done: the whole page, answered as the command was
        return Response(status=200, headers={"HX-Redirect": here})
    return _outcome_page(outcome)


def _outcome_page(outcome: dict[str, Any]) -> Any:
    """The requisition the command was about (or created), with the refusal if it was refused;
    or the page named by ``then``."""
    status = int(outcome["status"])
    why = str((outcome.get("problem") or {}).get("detail") or "That was refused.") if status >= 400 else ""
    then = THEN.get(request.args.get("then", ""))
    requisition_id = _requisition_of(outcome)
    if then is None and requisition_id is not None:
        if why:
            return requisition_page(requisition_id, status=status, error=why)
        return redirect(url_for("web.requisition", requisition_id=requisition_id), 303)
    if why:
        return page("message.html", status, title="Not done", text=why)
    return redirect(url_for(then), 303) if then else page("message.html", title="Done", text="Done.")


def _requisition_of(outcome: dict[str, Any]) -> uuid.UUID | None:
    """The requisition the page named, or the one the command created."""
    return _uuid(request.args.get("requisition", "")) or _uuid(str((outcome.get("body") or {}).get("id", "")))


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
