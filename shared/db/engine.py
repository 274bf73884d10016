"""Engine and session factories, built from a URL at start-up (never at import time)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from shared import fastjson
from shared.db.uow import Publisher, UnitOfWork

if TYPE_CHECKING:
    from shared.messaging.snapshots import Snapshots


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned for the backend: pre-ping on PostgreSQL, WAL and locking on SQLite; JSON
    columns written and read by orjson."""
    parsed = make_url(url)
    kwargs.setdefault("json_serializer", fastjson.column_dumps)
    kwargs.setdefault("json_deserializer", fastjson.column_loads)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 10)
        return create_engine(url, **kwargs)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take it over
    # (SQLAlchemy's "Serializable isolation / Savepoints / Transactional DDL" recipe) and
    # begin IMMEDIATE, so two processes never both read then fail to upgrade to a write.
    engine = create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False, "isolation_level": None}, **kwargs
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """One service's database: its engine and a unit-of-work factory.

    ``publish``: send what a unit of work emitted straight after its commit (see ``UnitOfWork``).
    """

    def __init__(
        self, url: str, snapshots: Snapshots | None = None, publish: Publisher | None = None, **engine_kwargs: Any
    ) -> None:
        self.url = url
        self.publish = publish
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        self.snapshots = snapshots
        if snapshots is not None:
            snapshots.install(self.sessions)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def uow(self) -> UnitOfWork:
        """A fresh unit of work; it rolls back unless committed."""
        return UnitOfWork(self.sessions, self.snapshots.publish_touched if self.snapshots else None, self.publish)

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        """A connection for one SELECT, outside any transaction: a single statement reads one
        snapshot by itself, so on PostgreSQL it skips the BEGIN and ROLLBACK round trips that
        every read would otherwise pay. (Reads of several statements that must agree use
        :meth:`uow`.)"""
        with self.engine.connect() as connection:
            if self.is_postgres:
                connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()
