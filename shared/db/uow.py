"""The unit of work: one transaction per use case, rolled back unless committed."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from shared.contracts.envelope import Envelope
from shared.messaging.outbox import add_to_outbox


class UnitOfWork:
    """Wraps a session; events emitted through it land in the outbox in the same commit."""

    session: Session

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        describe_changes: Callable[[Session], list[Envelope]] | None = None,
    ) -> None:
        self._factory = session_factory
        self._describe_changes = describe_changes
        self.emitted: list[Envelope] = []

    def __enter__(self) -> Self:
        self.session = self._factory()
        self.emitted = []
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.session.rollback()
        self.session.close()

    def emit(self, envelope: Envelope) -> None:
        """Queue an event for publication; it is written to the outbox with this transaction."""
        add_to_outbox(self.session, envelope)
        self.emitted.append(envelope)

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
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
        self.emitted = []
