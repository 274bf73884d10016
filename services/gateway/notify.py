"""Mail about a new alert to the people who must act on it: the roles named for its kind, whose
scope covers its branch, who are active and have an e-mail address.

The projector sends it when it first projects an alert (version 1); a repeat folded into the
alert, an acknowledgement or a resolution sends nothing. Delivery is at least once: a
projection retried after the mail went out mails again.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.gateway.identity import actor_of
from services.gateway.mail import Mailer
from services.gateway.models import Branch, User, UserRole
from shared.contracts.roles import can_see_branch

log = logging.getLogger(__name__)

# Who acts on each kind of alert.
ACTING_ROLES: dict[str, tuple[str, ...]] = {
    "float_critical": ("treasury", "finance"),
    "float_low": ("treasury",),
    "insufficient_funds": ("treasury",),
    "replenishment_proposed": ("finance", "cfo"),
    "payment_without_hold": ("finance", "admin"),
    "payment_failed": ("treasury",),
    "payment_stuck": ("treasury", "admin"),
    "otp_failures": ("admin",),
    "approval_overdue": ("branch_manager", "regional_manager", "admin"),
    "dead_letter": ("admin",),
}


def recipients(session: Session, kind: str, branch_id: str | None) -> list[str]:
    """The e-mail addresses of the active users who act on this kind of alert in its branch."""
    roles = ACTING_ROLES.get(kind, ("admin",))
    users = session.scalars(
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role.in_(roles), User.is_active.is_(True), User.email.is_not(None))
        .distinct()
    ).all()
    region = _region(session, branch_id)
    found = []
    for user in users:
        actor = actor_of(user)
        if branch_id is None or can_see_branch(actor, branch_id, region):
            found.append(str(user.email))
    return sorted(found)


def _region(session: Session, branch_id: str | None) -> str:
    try:
        key = uuid.UUID(branch_id or "")
    except ValueError:
        return ""
    region = session.scalar(select(Branch.region_id).where(Branch.id == key))
    return str(region) if region else ""


def mail_new_alert(session: Session, mailer: Mailer, alert: dict[str, Any]) -> int:
    """Mail a new alert to whoever acts on it; how many were mailed."""
    subject = f"[Petty cash] {alert['severity'].upper()}: {alert['kind'].replace('_', ' ')}"
    body = (
        f"{alert['message']}\n\n"
        f"First seen {alert['raised_at']}. Acknowledge or resolve it on the alerts page (/alerts).\n"
    )
    sent = 0
    for address in recipients(session, alert["kind"], alert.get("branch_id")):
        sent += mailer.send(address, subject, body)
    log.info("alert %s (%s) mailed to %d people", alert.get("id"), alert["kind"], sent)
    return sent
