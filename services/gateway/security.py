"""Security events: what happened to whose credentials and rights, kept by the gateway for
auditors and administrators (``GET /api/v1/security-events``).

Events are appended, never changed. An event about a user's credentials is written in the
same transaction as the change it records (a failed sign-in with its failure count), others
(a refused permission, a CSRF or rate-limit refusal) in a transaction of their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from flask import has_request_context, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.gateway.models import SecurityEvent
from shared.contracts.envelope import Actor
from shared.db.engine import Database

LIST_LIMIT = 200


class EventType(StrEnum):
    """The kinds of security event."""

    SIGN_IN_SUCCEEDED = "sign-in-succeeded"
    SIGN_IN_FAILED = "sign-in-failed"
    SECOND_FACTOR_FAILED = "second-factor-failed"
    RECOVERY_CODE_USED = "recovery-code-used"
    ACCOUNT_LOCKED = "account-locked"
    ACCOUNT_UNLOCKED = "account-unlocked"
    SIGNED_OUT = "signed-out"
    SIGNED_OUT_EVERYWHERE = "signed-out-everywhere"
    STEP_UP_FAILED = "step-up-failed"
    PASSWORD_CHANGED = "password-changed"
    PASSWORD_RESET_REQUESTED = "password-reset-requested"
    PASSWORD_LINK_SENT = "password-link-sent"
    SECOND_FACTOR_ENROLLED = "second-factor-enrolled"
    SECOND_FACTOR_RESET = "second-factor-reset"
    RECOVERY_CODES_CREATED = "recovery-codes-created"
    TOKEN_CREATED = "token-created"
    TOKEN_REVOKED = "token-revoked"
    USER_CREATED = "user-created"
    ROLES_CHANGED = "roles-changed"
    MEMBERSHIPS_CHANGED = "memberships-changed"
    USER_DEACTIVATED = "user-deactivated"
    USER_REACTIVATED = "user-reactivated"
    PERMISSION_DENIED = "permission-denied"
    CSRF_REFUSED = "csrf-refused"
    RATE_LIMITED = "rate-limited"


def _who(actor: Actor | None) -> tuple[str | None, str | None]:
    return (actor.user_id, actor.username) if actor is not None else (None, None)


def client_address() -> str | None:
    """The client's address as this request shows it (ProxyFix applies trusted proxies' headers)."""
    return request.remote_addr if has_request_context() else None


class SecurityLog:
    """Writes and reads the gateway's security events."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    def add(
        self,
        session: Session,
        kind: EventType,
        *,
        actor: Actor | None = None,
        subject: tuple[str | None, str | None] = (None, None),
        **detail: Any,
    ) -> None:
        """Append an event to ``session``'s transaction (it commits with the change it records)."""
        actor_id, actor_username = _who(actor)
        agent = request.headers.get("User-Agent", "")[:256] if has_request_context() else None
        session.add(
            SecurityEvent(
                at=self.clock(),
                type=str(kind),
                actor_id=actor_id,
                actor_username=actor_username,
                subject_id=subject[0],
                subject_username=subject[1],
                address=client_address(),
                user_agent=agent,
                detail=json.dumps(detail, sort_keys=True, default=str) if detail else "",
            )
        )

    def record(self, kind: EventType, **kwargs: Any) -> None:
        """Append an event in a transaction of its own."""
        with self.db.uow() as uow:
            self.add(uow.session, kind, **kwargs)
            uow.commit()

    def permission_denied(self, actor: Actor, action: str) -> None:
        """A caller asked for an action none of their roles allows."""
        self.record(
            EventType.PERMISSION_DENIED,
            actor=actor,
            action=action,
            method=request.method if has_request_context() else None,
            path=request.path if has_request_context() else None,
        )

    def list(
        self,
        *,
        kind: str | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = LIST_LIMIT,
    ) -> list[dict[str, Any]]:
        """Events, newest first, filtered by type, by the user they are about or by, and time."""
        e = SecurityEvent
        query = select(e).order_by(e.id.desc()).limit(min(limit, LIST_LIMIT))
        if kind:
            query = query.where(e.type == kind)
        if user_id:
            query = query.where((e.subject_id == user_id) | (e.actor_id == user_id))
        if since:
            query = query.where(e.at >= since)
        if before_id:
            query = query.where(e.id < before_id)
        with self.db.uow() as uow:
            return [_body(row) for row in uow.session.scalars(query)]


def _body(row: SecurityEvent) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "type": row.type,
        "actor": {"id": row.actor_id, "username": row.actor_username} if row.actor_id else None,
        "subject": {"id": row.subject_id, "username": row.subject_username} if row.subject_id else None,
        "address": row.address,
        "user_agent": row.user_agent,
        "detail": json.loads(row.detail) if row.detail else {},
    }
