"""The unit of work: one transaction per use case, rolled back unless committed."""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Collection
from functools import partial
from types import TracebackType
from typing import Any, Self

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from shared.contracts.envelope import Envelope
from shared.messaging.outbox import check_contract, write_outbox
from shared.messaging.tables import outbox

log = logging.getLogger(__name__)

# Sends committed messages, in order (``EventPublisher.many``: events travel in bundles).
Publisher = Callable[[list[dict[str, Any]]], None]

# A commit that emits more than this many messages leaves their sending to the relay, so a
# command answers without publishing them all first. Below it, events travel in bundles (one
# broker message per subscriber for up to fifty), so a run of a hundred payments is sent in
# about fifteen broker messages, straight after its commit.
DIRECT_SEND_LIMIT = 400

# How much later than the rest a reply's carried snapshots are sent (see ``release_sends``).
CARRIED_SNAPSHOT_HOLD_SECONDS = 0.1

# Sends held back until the thread releases them (a command's, until its reply is stored).
_held = threading.local()


def hold_sends() -> None:
    """Hold this thread's post-commit sends until :func:`release_sends` (any left over from an
    earlier hold are sent first: a hold is never a drop)."""
    release_sends()
    _held.sends = []


def snapshot_key(event_type: str, payload: dict[str, Any]) -> tuple[str, str]:
    """What names a snapshot among a commit's messages: its type and its aggregate's id."""
    return event_type, str(payload.get("id"))


def release_sends(carried: Collection[tuple[str, str]] = ()) -> None:
    """Send what this thread's commits held back, in commit order, and stop holding.

    ``carried``: the snapshots the command's reply carries (:func:`snapshot_key`). The gateway that waits
    for the reply projects those itself before it answers; their own messages, for the
    projector (which serves every other case: a gateway that gave up waiting, one that died),
    go :data:`CARRIED_SNAPSHOT_HOLD_SECONDS` later, so that the same rows are not written twice
    at once, competing with the answer for the machine.
    """
    sends: list[tuple[UnitOfWork, Publisher, list[Envelope]]] | None = getattr(_held, "sends", None)
    _held.sends = None
    for uow, publish, batch in sends or ():
        now: list[Envelope] = []
        later: list[Envelope] = []
        for envelope in batch:
            (later if snapshot_key(envelope.type, envelope.payload) in carried else now).append(envelope)
        if now:
            uow.send(publish, now)
        if later:
            _LATER.hold(partial(uow.send, publish, later))


class _SendsLater:
    """One thread per process that makes the sends held for :data:`CARRIED_SNAPSHOT_HOLD_SECONDS`,
    in the order they were held (every hold is as long). A process that stops first leaves
    them unacknowledged, to its relay's re-send."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[float, Callable[[], None]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, send: Callable[[], None]) -> None:
        with self._lock:  # started at the first use, so never before a fork
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sends-later", daemon=True)
                self._thread.start()
        self._queue.put((time.monotonic() + CARRIED_SNAPSHOT_HOLD_SECONDS, send))

    def _run(self) -> None:
        while True:
            due, send = self._queue.get()
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                send()
            except Exception:  # UnitOfWork.send hands what fails to the relay; this is a last resort
                log.exception("a held send failed")


_LATER = _SendsLater()


class UnitOfWork:
    """Wraps a session; events emitted through it land in the outbox in the same commit.

    With a ``publish`` function (a service's workers), the outbox rows are written already
    marked as sent and the events are sent straight after the commit, from memory: no second
    transaction to claim them (a commit of more than ``DIRECT_SEND_LIMIT`` leaves them to the
    relay, which publishes in batches). The rows are written in one statement at the commit;
    each event is checked against its contract when it is emitted. A send that fails hands its
    rows back to the relay; a process that dies between the commit and the send leaves rows
    that nobody acknowledges, which the relay sends again after the delivery deadline
    (``shared.messaging.delivery``). While the thread holds its sends (:func:`hold_sends`),
    they wait for :func:`release_sends`: a command's go once its reply is stored.
    """

    session: Session

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        describe_changes: Callable[[Session], list[Envelope]] | None = None,
        publish: Publisher | None = None,
        direct_send_limit: int | None = DIRECT_SEND_LIMIT,
    ) -> None:
        self._factory = session_factory
        self._direct_send_limit = direct_send_limit
        self._describe_changes = describe_changes
        self._publish = publish
        self.emitted: list[Envelope] = []
        self._unwritten: list[Envelope] = []

    def __enter__(self) -> Self:
        self.session = self._factory()
        self.emitted = []
        self._unwritten = []
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.session.rollback()
        self.session.close()

    def emit(self, envelope: Envelope) -> None:
        """Queue an event for publication; it is written to the outbox with this transaction."""
        check_contract(envelope)
        self.emitted.append(envelope)
        self._unwritten.append(envelope)

    def publish_changes(self) -> list[Envelope]:
        """Emit the read-model snapshots of what this transaction changed so far (see
        ``shared.messaging.snapshots``); ``commit`` does it too, for whatever is left."""
        if self._describe_changes is None:
            return []
        envelopes = self._describe_changes(self.session)
        for envelope in envelopes:
            self.emit(envelope)
        return envelopes

    def commit(self) -> None:
        self.publish_changes()
        batch, self._unwritten = self._unwritten, []
        limit = self._direct_send_limit
        direct = self._publish is not None and (limit is None or len(batch) <= limit)
        write_outbox(self.session, batch, sent=direct)
        self.session.commit()
        if direct and self._publish is not None and batch:
            held: list[tuple[UnitOfWork, Publisher, list[Envelope]]] | None = getattr(_held, "sends", None)
            if held is None:
                self.send(self._publish, batch)
            else:
                held.append((self, self._publish, batch))

    def rollback(self) -> None:
        self.session.rollback()
        self.emitted = []
        self._unwritten = []

    def send(self, publish: Publisher, envelopes: list[Envelope]) -> None:
        """Send committed events; those the broker refuses are handed back to the relay."""
        try:
            publish([envelope.to_dict() for envelope in envelopes])
        except Exception:
            log.warning("could not send %d committed event(s); the relay will", len(envelopes), exc_info=True)
            self._hand_to_relay(envelopes)

    def _hand_to_relay(self, envelopes: list[Envelope]) -> None:
        ids = [uuid.UUID(e.message_id) for e in envelopes]
        try:
            with self._factory() as session:
                session.execute(update(outbox).where(outbox.c.message_id.in_(ids)).values(published_at=None))
                session.commit()
        except Exception:  # the rows stay marked sent: unacknowledged, they are re-sent after the deadline
            log.warning("could not hand %d event(s) to the relay; re-sent after the deadline", len(ids))
