"""The alert store: every service raises alerts about the facts it owns (``AlertRaised``)
and clears them when their cause is gone (``AlertCleared``); people acknowledge and resolve them.

One unresolved alert per kind and subject: a second raise folds into it (its count and
last-seen time grow, its message and severity are the latest), in one ``INSERT ... ON
CONFLICT`` on the partial unique index, so two raises at once cannot make two alerts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from services.requisition.models import Alert
from services.requisition.schemas import alert_body
from shared.contracts.envelope import Envelope
from shared.contracts.permissions import Action, may
from shared.contracts.roles import can_see_branch
from shared.db import upsert
from shared.db.types import utcnow
from shared.db.uow import UnitOfWork
from shared.messaging.errors import Conflict, Forbidden, NotFound, ok_reply
from shared.messaging.snapshots import touch

SYSTEM = "system"  # who resolved an alert whose cause went away


def subject_of(payload: dict[str, Any]) -> str:
    """What an alert is about: as raised, else its requisition, its branch, or its kind alone."""
    if payload.get("subject"):
        return str(payload["subject"])
    if payload.get("requisition_id"):
        return f"requisition:{payload['requisition_id']}"
    if payload.get("branch_id"):
        return f"branch:{payload['branch_id']}"
    return str(payload["kind"])


def on_alert_raised(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """A new alert, or one more occurrence of the unresolved one of its kind and subject."""
    session = uow.session
    now = utcnow()
    # When the owner saw it (its event's time, not ours): a clear decided before it must not
    # resolve it, whichever of the two arrives first.
    seen = _occurred(envelope)
    row = {
        "message_id": uuid.UUID(envelope.message_id),
        "kind": payload["kind"],
        "subject": subject_of(payload),
        "severity": payload["severity"],
        "message": payload["message"],
        "requisition_id": payload["requisition_id"],
        "branch_id": payload["branch_id"],
        "region_id": payload.get("region_id"),
        "source": payload["source"],
        "raised_at": now,
        "last_seen_at": seen,
        "count": 1,
        "status": "open",
        "resolution_note": "",
    }
    stmt = upsert.insert(session, Alert).values(row)
    folded = stmt.on_conflict_do_update(
        index_elements=[Alert.kind, Alert.subject],
        index_where=Alert.status != "resolved",
        set_={
            "count": Alert.count + 1,
            "last_seen_at": case(
                (Alert.last_seen_at > stmt.excluded.last_seen_at, Alert.last_seen_at),
                else_=stmt.excluded.last_seen_at,
            ),
            "message": stmt.excluded.message,
            "severity": stmt.excluded.severity,
        },
    ).returning(Alert.id)
    touch(session, "alert", session.scalar(folded))


def _occurred(envelope: Envelope) -> datetime:
    return datetime.fromisoformat(envelope.occurred_at)


def on_alert_cleared(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """The cause is gone: the unresolved alert of this kind and subject resolves itself, unless
    its owner saw it again after deciding so (that raise arrived first: it stays open)."""
    session = uow.session
    resolved = session.scalars(
        update(Alert)
        .where(
            Alert.kind == payload["kind"],
            Alert.subject == payload["subject"],
            Alert.status != "resolved",
            Alert.last_seen_at <= _occurred(envelope),
        )
        .values(status="resolved", resolved_by=SYSTEM, resolved_at=utcnow(), resolution_note=payload["note"])
        .returning(Alert.id)
    ).all()
    for alert_id in resolved:
        touch(session, "alert", alert_id)


def _handled(uow: UnitOfWork, envelope: Envelope, alert_id: int) -> Alert:
    """The alert, locked, if the actor may handle it (absent and out of scope look alike)."""
    if not may(envelope.actor, Action.HANDLE_ALERTS):
        raise Forbidden("Only treasury, finance, the CFO, admins and managers handle alerts.", code="forbidden")
    alert = uow.session.get(Alert, alert_id, with_for_update=True)
    if alert is None or (alert.branch_id and not can_see_branch(envelope.actor, alert.branch_id, alert.region_id)):
        raise NotFound("No such alert.")
    if alert.status == "resolved":
        raise Conflict("This alert is resolved already.", code="already-resolved")
    return alert


def acknowledge_alert(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Someone is on it: the alert stays until it is resolved."""
    alert = _handled(uow, envelope, payload["id"])
    if alert.status == "open":
        alert.status = "acknowledged"
        alert.acknowledged_by = envelope.actor.user_id
        alert.acknowledged_at = utcnow()
    return ok_reply(200, alert_body(alert))


def resolve_alert(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Done with it, saying what was done."""
    if not payload["note"].strip():
        raise Conflict("Say what was done: resolving an alert needs a note.", code="note-required")
    alert = _handled(uow, envelope, payload["id"])
    alert.status = "resolved"
    alert.resolved_by = envelope.actor.user_id
    alert.resolved_at = utcnow()
    alert.resolution_note = payload["note"].strip()
    return ok_reply(200, alert_body(alert))


def alert_snapshots(session: Session, ids: Sequence[Any]) -> list[dict[str, Any]]:
    """Alerts as the gateway projects them."""
    return [
        {
            "id": str(a.id),
            "branch_id": a.branch_id,
            "raised_at": a.raised_at.isoformat(),
            "status": a.status,
            "severity": a.severity,
            "kind": a.kind,
            "last_seen_at": a.last_seen_at.isoformat(),
            "body": alert_body(a),
        }
        for a in session.scalars(select(Alert).where(Alert.id.in_([int(i) for i in ids])))
    ]


__all__ = ["acknowledge_alert", "alert_snapshots", "on_alert_cleared", "on_alert_raised", "resolve_alert"]
