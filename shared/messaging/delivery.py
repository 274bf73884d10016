"""End-to-end delivery: a message is done when its consumers took it, not when the broker did.

Redis without persistence forgets every queued and unacknowledged message when it restarts,
so handing a message to the broker proves nothing. Each consumer therefore acknowledges each
outbox message it received, once its effect is committed (or once it is sure the message
can never take effect: a duplicate, a dead letter), back to the service that sent it; the
sender records the acknowledgements, and its relay sends a message again, to the consumers
that have not acknowledged it, once a deadline has passed (doubling up to a cap). Consumers
are idempotent (the inbox), so a re-send after a lost acknowledgement is harmless.

This is also how out-of-order arrival converges: an event that comes before the one it
follows is retried a few times, briefly, and then set aside unacknowledged; the sender's
re-send brings it back after the deadline, by when its predecessor (re-sent the same way if
it was lost) has arrived.

Acknowledgements are batched per process (one message per sender every
:data:`FLUSH_SECONDS`), so the cost is a fraction of a message per message.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.db import upsert
from shared.db.types import utcnow
from shared.messaging.tables import outbox, outbox_acks

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25
RESEND_BATCH = 200
# Re-sends back off: the deadline, then twice it, four times... at most this many deadlines.
MAX_BACKOFF_FACTOR = 32

Sender = Callable[[str, list[dict[str, str]]], None]
Publisher = Callable[..., None]


class AckBatcher:
    """Collects this process's acknowledgements and sends them, one message per sender, in batches."""

    def __init__(self, send: Sender, subscriber: str) -> None:
        self._send = send
        self._subscriber = subscriber
        self._lock = threading.Lock()
        self._pending: dict[str, list[dict[str, str]]] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def ack(self, origin: str, message_id: str) -> None:
        """Acknowledge a message to the service it came from (soon, with others)."""
        with self._lock:
            self._pending.setdefault(origin, []).append({"message_id": message_id, "subscriber": self._subscriber})
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="acks", daemon=True)
                self._thread.start()
        self._wake.set()

    def flush(self) -> None:
        """Send what is pending now (a failed send is dropped: the sender re-sends, we ack again)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for origin, acks in pending.items():
            try:
                self._send(origin, acks)
            except Exception:
                log.warning("could not acknowledge %d message(s) to %s; they will come again", len(acks), origin)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            # Gather a batch: the acknowledgements that come meanwhile join it (waiting on the
            # event instead would end the gathering at the second one).
            time.sleep(FLUSH_SECONDS)
            self._wake.clear()
            self.flush()


def record_acks(session: Session, acks: Iterable[dict[str, Any]], expected: Callable[[str], int]) -> int:
    """Record acknowledgements; mark messages every recipient acknowledged. The caller commits.

    ``expected(event_type)`` is how many recipients a message of that type has.
    """
    rows = {(uuid.UUID(str(a["message_id"])), str(a["subscriber"])) for a in acks}
    if not rows:
        return 0
    now = utcnow()
    session.execute(
        upsert.insert(session, outbox_acks)
        .values([{"message_id": m, "subscriber": s, "acked_at": now} for m, s in sorted(rows)])
        .on_conflict_do_nothing()
    )
    ids = sorted({m for m, _ in rows})
    # Lock the messages first (in one order, so two batches never wait on each other
    # crosswise): a concurrent batch acknowledging the same message commits before this one
    # counts, so the last of them always sees every acknowledgement.
    session.execute(
        select(outbox.c.seq).where(outbox.c.message_id.in_(ids)).order_by(outbox.c.seq).with_for_update()
    ).all()
    counts = session.execute(
        select(outbox.c.message_id, outbox.c.event_type, func.count(outbox_acks.c.subscriber))
        .join(outbox_acks, outbox_acks.c.message_id == outbox.c.message_id)
        .where(outbox.c.message_id.in_(ids), outbox.c.acked_at.is_(None))
        .group_by(outbox.c.message_id, outbox.c.event_type)
    ).all()
    done = [m for m, event_type, n in counts if n >= expected(event_type)]
    if done:
        session.execute(update(outbox).where(outbox.c.message_id.in_(done)).values(acked_at=now))
    return len(done)


def resend_unacked(
    session: Session, publish: Publisher, recipients: Callable[[dict[str, Any]], tuple[str, ...]], deadline: float
) -> int:
    """Send again what some recipient has not acknowledged in time; returns how many messages.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so several relays share the work.
    """
    now = utcnow()
    try:
        rows = session.execute(_due(session, now, timedelta(seconds=deadline))).all()
        if not rows:
            session.rollback()
            return 0
        acked = _acknowledged_by(session, [r.message_id for r in rows])
        delivered = []
        for row in rows:
            missing = tuple(r for r in recipients(row.envelope) if r not in acked.get(row.message_id, set()))
            if missing:
                _resend(publish, row, missing)
            else:  # every recipient took it; only the marking was missed
                delivered.append(row.seq)
        _mark_resent(session, now, rows, delivered)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return len(rows)


def _due(session: Session, now: Any, wait: timedelta) -> Any:
    """The unacknowledged messages past their deadline (backed off by their re-sends so far)."""
    backoff = func.least(func.power(2, outbox.c.resends), MAX_BACKOFF_FACTOR) if _postgres(session) else 1
    return (
        select(outbox.c.seq, outbox.c.message_id, outbox.c.envelope, outbox.c.resends)
        .where(
            outbox.c.acked_at.is_(None),
            outbox.c.published_at.is_not(None),
            outbox.c.published_at < now - wait,
            (outbox.c.resent_at.is_(None)) | (outbox.c.resent_at < now - wait * backoff),
        )
        .order_by(outbox.c.seq)
        .limit(RESEND_BATCH)
        .with_for_update(skip_locked=True)
    )


def _acknowledged_by(session: Session, message_ids: list[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    """Who acknowledged each of these messages."""
    acked: dict[uuid.UUID, set[str]] = {}
    for message_id, subscriber in session.execute(
        select(outbox_acks.c.message_id, outbox_acks.c.subscriber).where(outbox_acks.c.message_id.in_(message_ids))
    ):
        acked.setdefault(message_id, set()).add(subscriber)
    return acked


def _resend(publish: Publisher, row: Any, missing: tuple[str, ...]) -> None:
    publish(row.envelope, only=missing)
    if row.resends + 1 in (3, 10, 30):
        log.warning(
            "%s %s re-sent %d times; %s never acknowledged it",
            row.envelope["type"],
            row.message_id,
            row.resends + 1,
            ", ".join(missing),
        )


def _mark_resent(session: Session, now: Any, rows: list[Any], delivered: list[int]) -> None:
    if delivered:
        session.execute(update(outbox).where(outbox.c.seq.in_(delivered)).values(acked_at=now))
    session.execute(
        update(outbox)
        .where(outbox.c.seq.in_([r.seq for r in rows if r.seq not in delivered]))
        .values(resent_at=now, resends=outbox.c.resends + 1)
    )


def _postgres(session: Session) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"
