"""The transactional outbox: events are rows written with the change, published after commit.

Publication claims rows with ``UPDATE ... WHERE seq IN (SELECT ... FOR UPDATE SKIP LOCKED)``,
sends them, and commits the claim. Several relays can run: each claims different rows. A
relay that dies after sending but before committing leaves its rows unclaimed, so they are
sent again; consumers' inboxes make that harmless (at-least-once delivery, one effect).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from shared.contracts.envelope import Envelope
from shared.db.types import utcnow
from shared.messaging.tables import outbox, outbox_acks

log = logging.getLogger(__name__)

# Sends claimed messages, in order (``EventPublisher.many``).
Publisher = Callable[[list[dict[str, Any]]], None]


class ContractViolation(Exception):
    """A message about to be emitted breaks its schema in ``shared.contracts``: a bug, not data."""


def check_contract(envelope: Envelope) -> None:
    """Validate a message against its declared payload schema before it leaves the service."""
    from shared.contracts import instances
    from shared.contracts.catalog import EVENTS, TASKS_BY_NAME

    spec = EVENTS.get(envelope.type) or TASKS_BY_NAME.get(envelope.type)
    if spec is None:
        raise ContractViolation(f"{envelope.type} is not declared in shared.contracts")
    errors = instances.schema(spec.payload).validate(envelope.payload)
    if errors:
        raise ContractViolation(f"{envelope.type} breaks its contract: {errors}")


def add_to_outbox(session: Session, envelope: Envelope, *, sent: bool = False) -> None:
    """Write an event to the outbox as part of the session's current transaction (checked first).

    ``sent``: the caller sends it itself straight after the commit (``UnitOfWork``), so the row
    is written as published and only the delivery deadline's re-send stands behind it.
    """
    check_contract(envelope)
    write_outbox(session, [envelope], sent=sent)


def write_outbox(session: Session, envelopes: list[Envelope], *, sent: bool = False) -> None:
    """Write checked events to the outbox in one statement (a use case's, at its commit)."""
    if not envelopes:
        return
    now = utcnow()
    published_at = now if sent else None
    session.execute(
        outbox.insert(),
        [
            {
                "message_id": uuid.UUID(e.message_id),
                "event_type": e.type,
                "envelope": e.to_dict(),
                "created_at": now,
                "published_at": published_at,
            }
            for e in envelopes
        ],
    )


def publish_pending(session: Session, publish: Publisher, batch_size: int = 100) -> int:
    """Claim up to ``batch_size`` unpublished events, send them in order, commit the claim."""
    pending = (
        select(outbox.c.seq)
        .where(outbox.c.published_at.is_(None))
        .order_by(outbox.c.seq)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    try:
        rows = session.execute(
            update(outbox)
            .where(outbox.c.seq.in_(pending), outbox.c.published_at.is_(None))
            .values(published_at=utcnow())
            .returning(outbox.c.seq, outbox.c.envelope)
        ).all()
        if rows:
            publish([envelope for _seq, envelope in sorted(rows)])
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return len(rows)


# Whether anything waits for the relay: one look down the partial index of unpublished events.
ANY_UNPUBLISHED = select(exists().where(outbox.c.published_at.is_(None)))


def unpublished_count(session: Session) -> int:
    """How many events wait for the relay (for health checks and tests)."""
    return len(session.execute(select(outbox.c.seq).where(outbox.c.published_at.is_(None))).all())


def prune_published(session: Session, older_than: timedelta) -> int:
    """Delete published events (and their acknowledgements) older than the retention; the caller commits."""
    cutoff = utcnow() - older_than
    session.execute(delete(outbox_acks).where(outbox_acks.c.acked_at < cutoff))
    result = session.execute(delete(outbox).where(outbox.c.published_at.is_not(None), outbox.c.published_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
