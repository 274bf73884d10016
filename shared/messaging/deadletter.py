"""Dead letters: messages that kept failing, kept for operators to inspect and replay."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db.types import utcnow
from shared.messaging.tables import dead_letters


def bury(session: Session, task_name: str, envelope: dict[str, Any], error: str, attempts: int) -> None:
    """Record a message that will not be retried; the caller commits."""
    message_id = envelope.get("message_id") if isinstance(envelope, dict) else None
    try:
        parsed_id = uuid.UUID(str(message_id))
    except ValueError:
        parsed_id = uuid.uuid4()  # a message too broken to have an id still gets a row
    session.execute(
        dead_letters.insert().values(
            message_id=parsed_id,
            task_name=task_name,
            envelope=envelope if isinstance(envelope, dict) else {"raw": repr(envelope)},
            error=error[:4000],
            attempts=attempts,
            failed_at=utcnow(),
        )
    )


def list_dead_letters(session: Session, include_replayed: bool = False) -> list[dict[str, Any]]:
    """Dead letters, oldest first."""
    query = select(dead_letters).order_by(dead_letters.c.id)
    if not include_replayed:
        query = query.where(dead_letters.c.replayed_at.is_(None))
    return [dict(row._mapping) for row in session.execute(query)]


def take_for_replay(session: Session, dead_letter_id: int) -> dict[str, Any] | None:
    """Mark a dead letter replayed and return it (None if unknown or already replayed)."""
    row = session.execute(
        update(dead_letters)
        .where(dead_letters.c.id == dead_letter_id, dead_letters.c.replayed_at.is_(None))
        .values(replayed_at=utcnow())
        .returning(dead_letters.c.task_name, dead_letters.c.envelope)
    ).first()
    return None if row is None else {"task_name": row.task_name, "envelope": row.envelope}
