"""The alerts page: what needs attention in the reader's scope, by severity; acknowledge it,
or resolve it with a note (the API's reads and commands)."""

from __future__ import annotations

from typing import Any

from flask import request

from services.gateway import reads
from services.gateway.access import permits
from services.gateway.api.alerts import acknowledge_alert, resolve_alert
from services.gateway.api.replies import read
from services.gateway.auth import current_actor
from services.gateway.branches import branch_codes
from services.gateway.web import bp, page
from services.gateway.web.formatting import alert_words
from services.gateway.web.requisitions import after_command
from shared.contracts.permissions import Action, may

STATUSES = {"unresolved": "Unresolved", "open": "Open", "acknowledged": "Acknowledged", "resolved": "Resolved"}
SEVERITIES = ("critical", "warning", "info")


@bp.get("/alerts")
@permits(Action.READ_ALERTS, sessions_only=True)
def alerts_page(status: int = 200, error: str = "") -> Any:
    """Alerts in scope, last seen first; ``status`` and ``severity`` narrow the list."""
    chosen = request.args.get("status", "unresolved")
    chosen = chosen if chosen in STATUSES else "unresolved"
    severity = request.args.get("severity") or None
    severity = severity if severity in SEVERITIES else None
    actor = current_actor()
    listed = read(reads.alerts, actor, chosen, severity, 100)
    return page(
        "alerts.html",
        status,
        items=listed["items"],
        counts=listed["counts"],
        statuses=STATUSES,
        severities=SEVERITIES,
        chosen=chosen,
        severity=severity,
        may_handle=may(actor, Action.HANDLE_ALERTS),
        branch_codes=branch_codes(),
        alert_words=alert_words,
        error=error,
    )


@bp.post("/alerts/<int:alert_id>/acknowledgement")
@permits(Action.HANDLE_ALERTS, sessions_only=True)
def acknowledge(alert_id: int) -> Any:
    return _back(acknowledge_alert(alert_id))


@bp.post("/alerts/<int:alert_id>/resolution")
@permits(Action.HANDLE_ALERTS, sessions_only=True)
def resolve(alert_id: int) -> Any:
    note = request.form.get("note", "").strip()[:1000]
    if not note:
        return alerts_page(400, "Say what was done: resolving an alert needs a note.")
    return _back(resolve_alert(alert_id, note))


def _back(answer: Any) -> Any:
    return after_command(answer, alerts_page, "alerts")
