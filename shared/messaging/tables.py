"""The messaging tables every service keeps in its own database.

They live beside the service's own tables, so the outbox commits with the change it
describes. One Alembic history creates them in every service's database
(``shared/messaging/migrations/versions``, branch ``messaging``; see ``shared.db.migrate``);
a change here needs a revision there, and tests/integration/test_migrations.py fails until
the two agree.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, Uuid

from shared.db.types import JSONType, UTCDateTime

metadata = MetaData()

outbox = Table(
    "outbox",
    metadata,
    # SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("message_id", Uuid, nullable=False, unique=True),
    Column("event_type", String(100), nullable=False),
    Column("envelope", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    # End-to-end delivery (shared.messaging.delivery): every consumer acknowledges a message
    # once it took effect; until all have, the relay sends it again to those that have not.
    Column("acked_at", UTCDateTime, nullable=True),
    Column("resent_at", UTCDateTime, nullable=True),
    Column("resends", Integer, nullable=False, server_default="0"),
)
Index("ix_outbox_unpublished", outbox.c.seq, postgresql_where=outbox.c.published_at.is_(None))
Index(
    "ix_outbox_unacked",
    outbox.c.published_at,
    postgresql_where=outbox.c.acked_at.is_(None) & outbox.c.published_at.is_not(None),
)

# Which consumer has acknowledged which outbox message.
outbox_acks = Table(
    "outbox_acks",
    metadata,
    Column("message_id", Uuid, primary_key=True),
    Column("subscriber", String(32), primary_key=True),
    Column("acked_at", UTCDateTime, nullable=False),
)

inbox = Table(
    "inbox",
    metadata,
    Column("message_id", Uuid, primary_key=True),
    Column("task_name", String(120), nullable=False),
    Column("result", JSONType, nullable=True),
    Column("processed_at", UTCDateTime, nullable=False, index=True),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("message_id", Uuid, nullable=False, index=True),
    Column("task_name", String(120), nullable=False),
    Column("envelope", JSONType, nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("failed_at", UTCDateTime, nullable=False),
    Column("replayed_at", UTCDateTime, nullable=True),
)

# The version of each aggregate a service publishes as a read-model snapshot
# (``shared.messaging.snapshots``); kept apart from the aggregates' own tables so that
# documents (the policy, the caps) and bulk-loaded rows version the same way.
read_model_versions = Table(
    "read_model_versions",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
)
