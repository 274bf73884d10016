"""The inbox: message ids recorded with their effects, so a redelivery has no second effect."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.db import upsert
from shared.db.types import utcnow
from shared.messaging.tables import inbox


def stored_result(session: Session, message_id: str) -> Any:
    """The recorded result of a message already handled (None if it was not)."""
    row = session.execute(select(inbox.c.result).where(inbox.c.message_id == uuid.UUID(message_id))).first()
    return None if row is None else row.result


def claim(session: Session, message_id: str, task_name: str) -> bool:
    """Claim a message for this transaction; False if another delivery recorded it first.

    One round trip: ``INSERT ... ON CONFLICT DO NOTHING RETURNING``. On PostgreSQL a
    concurrent delivery of the same message waits here until the first one's transaction
    ends; SQLite's BEGIN IMMEDIATE already serialised them.
    """
    claimed = session.execute(
        upsert.insert(session, inbox)
        .values(message_id=uuid.UUID(message_id), task_name=task_name, result=None, processed_at=utcnow())
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(inbox.c.message_id)
    ).first()
    return claimed is not None


def claim_many(session: Session, results: dict[str, Any], task_name: str) -> set[str]:
    """Claim several messages at once, each with its result (a bundle of events); the ids of
    those no other delivery recorded first. Inserted in id order, so two bundles holding the
    same messages wait for each other rather than crosswise."""
    if not results:
        return set()
    now = utcnow()
    rows = [
        {
            "message_id": uuid.UUID(message_id),
            "task_name": task_name,
            "result": results[message_id],
            "processed_at": now,
        }
        for message_id in sorted(results)
    ]
    claimed = session.execute(
        upsert.insert(session, inbox)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(inbox.c.message_id)
    ).all()
    return {str(row.message_id) for row in claimed}


def record(session: Session, message_id: str, task_name: str, result: Any) -> None:
    """Record a handled message in the caller's transaction.

    Raises ``IntegrityError`` when another delivery of the same message committed first;
    on PostgreSQL the insert waits for that delivery's transaction, so the loser rolls back
    its effects and answers with the winner's stored result.
    """
    session.execute(
        inbox.insert().values(
            message_id=uuid.UUID(message_id), task_name=task_name, result=result, processed_at=utcnow()
        )
    )
    session.flush()


def prune(session: Session, older_than: timedelta) -> int:
    """Forget messages handled longer ago than any redelivery can come; the caller commits."""
    result = session.execute(delete(inbox).where(inbox.c.processed_at < utcnow() - older_than))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def set_result(session: Session, message_id: str, result: Any) -> None:
    """Store the outcome of a claimed message in the caller's transaction."""
    session.execute(inbox.update().where(inbox.c.message_id == uuid.UUID(message_id)).values(result=result))
