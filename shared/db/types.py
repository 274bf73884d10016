"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps; SQLite's naive values are read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


class uuid_text(FunctionElement[str]):  # noqa: N801 (a SQL function, named as SQL functions are)
    """A UUID column as its text, ``8-4-4-4-12`` in lower case as ``str(uuid)`` writes it, or
    ``''`` for NULL: written by the database, so a row of ids costs no Python ``UUID`` objects.
    (PostgreSQL stores a native uuid; SQLite the 32 hex digits, which are hyphenated here.)"""

    type = Text()
    inherit_cache = True
    name = "uuid_text"


@compiles(uuid_text, "postgresql")
def _uuid_text_postgresql(element: uuid_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"COALESCE(CAST({compiler.process(element.clauses, **kw)} AS TEXT), '')"


@compiles(uuid_text)
def _uuid_text_hex(element: uuid_text, compiler: SQLCompiler, **kw: Any) -> str:
    hex_ = f"lower({compiler.process(element.clauses, **kw)})"
    parts = " || '-' || ".join(f"substr({hex_}, {start}, {length})" for start, length in UUID_GROUPS)
    return f"COALESCE({parts}, '')"


# Where each group of a UUID's 32 hex digits starts (1-based, as SQL's substr counts) and its length.
UUID_GROUPS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
