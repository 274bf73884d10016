"""Dead letters: messages that kept failing, kept for operators to inspect and replay.

A service with dead letters has one alert about them (kind ``dead_letter``, subject
``dead_letters:<service>``): raised in the transaction that buries each one, cleared in the
transaction that replays the last one left. Both transactions take the same lock first, so
whether any is left is decided in the order they commit: a letter buried while the last one is
replayed either counts (no clear) or raises again after the clear.
"""

from __future__ import annotations

import uuid
import zlib
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from shared.contracts.catalog import ALERT_CLEARED, ALERT_RAISED
from shared.contracts.envelope import SYSTEM_ACTOR, Envelope
from shared.db.types import utcnow
from shared.db.uow import UnitOfWork
from shared.messaging.tables import dead_letters

ALERT_KIND = "dead_letter"
# One advisory lock per database, taken by whoever buries or replays (PostgreSQL; SQLite
# serialises writers by itself).
_LOCK_KEY = zlib.crc32(b"dead_letters")


def alert_subject(service: str) -> str:
    """What a service's dead-letter alert is about."""
    return f"dead_letters:{service}"


def _serialise(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def bury_and_alert(uow: UnitOfWork, service: str, task_name: str, envelope: Any, error: str, attempts: int) -> None:
    """Bury a message and raise the service's dead-letter alert about it, in the caller's transaction."""
    _serialise(uow.session)
    bury(uow.session, task_name, envelope, error, attempts)
    message_id = envelope.get("message_id") if isinstance(envelope, dict) else None
    message = f"{task_name} gave up on message {message_id} after {attempts} attempt(s): {error}"
    payload = {
        "kind": ALERT_KIND,
        "severity": "critical",
        "subject": alert_subject(service),
        "message": message[:1000],
        "source": service,
    }
    uow.emit(Envelope(type=ALERT_RAISED.name, payload=payload, actor=SYSTEM_ACTOR))


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


def unreplayed(session: Session) -> int:
    """How many dead letters wait for an operator."""
    return int(session.scalar(select(func.count()).where(dead_letters.c.replayed_at.is_(None))) or 0)


def replay(uow: UnitOfWork, service: str, dead_letter_id: int) -> dict[str, Any] | None:
    """Take a dead letter for replay (None if unknown or replayed already); if it was the last
    one left, clear the service's dead-letter alert in the same transaction (through its outbox).
    The caller sends the message again once this has committed."""
    _serialise(uow.session)
    taken = take_for_replay(uow.session, dead_letter_id)
    if taken is not None and unreplayed(uow.session) == 0:
        note = f"No dead letter left: the last one (#{dead_letter_id}, {taken['task_name']}) was replayed."
        payload = {"kind": ALERT_KIND, "subject": alert_subject(service), "note": note}
        uow.emit(Envelope(type=ALERT_CLEARED.name, payload=payload, actor=SYSTEM_ACTOR))
    return taken
