"""INSERT ... ON CONFLICT, which PostgreSQL and SQLite both speak, from one place."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert(session: Session, target: Any) -> Any:
    """An ``insert(target)`` of the session's dialect, so ``on_conflict_do_nothing`` is there."""
    postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
    return (postgresql.insert if postgres else sqlite.insert)(target)
