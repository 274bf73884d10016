"""The unit of work: one transaction per use case, rolled back unless committed."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from shared.contracts.envelope import Envelope
from shared.messaging.outbox import add_to_outbox


class UnitOfWork:
    """Wraps a session; events emitted through it land in the outbox in the same commit."""

    session: Session

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._factory = session_factory
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

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
        self.emitted = []
