"""``uuid_text``: a UUID column written as ``str(uuid)`` writes it, or '' for NULL, by the
database itself, on SQLite (32 hex digits stored) as on PostgreSQL (a native uuid)."""

from __future__ import annotations

import uuid

from sqlalchemy import Column, Integer, MetaData, Table, Uuid, create_engine, insert, select
from sqlalchemy.dialects import postgresql

from shared.db.types import uuid_text

metadata = MetaData()
things = Table("things", metadata, Column("n", Integer, primary_key=True), Column("ref", Uuid, nullable=True))


def test_sqlite_writes_the_stored_hex_digits_as_str_writes_a_uuid() -> None:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    refs = [uuid.uuid4() for _ in range(50)] + [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), None]
    with engine.begin() as connection:
        connection.execute(insert(things), [{"n": n, "ref": ref} for n, ref in enumerate(refs)])
        written = connection.execute(select(uuid_text(things.c.ref)).order_by(things.c.n)).scalars().all()
    assert written == [str(ref) if ref else "" for ref in refs]


def test_postgresql_casts_the_native_uuid_to_text() -> None:
    sql = str(select(uuid_text(things.c.ref)).compile(dialect=postgresql.dialect()))
    assert "COALESCE(CAST(things.ref AS TEXT), '')" in sql
