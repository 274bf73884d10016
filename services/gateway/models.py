"""The gateway's tables: identity (regions, branches, users, roles, memberships, passwords,
tokens, recovery codes, sessions of embedded mode), security events, and request bookkeeping."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.db.types import JSONType, UTCDateTime

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class Region(Base):
    __tablename__ = "regions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))


class Branch(Base):
    __tablename__ = "branches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    region_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("regions.id"))
    is_head_office: Mapped[bool] = mapped_column(Boolean, default=False)
    # The float's levels (minor units of ``levels_currency``): below the reorder level its
    # available balance is low; a replenishment tops it up to the imprest amount.
    levels_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    reorder_level: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    imprest: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    region: Mapped[Region] = relationship()


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    # Lower-cased; one account per address.
    email: Mapped[str | None] = mapped_column(String(254), unique=True, nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Argon2id (PHC string); null until the user sets one through an invitation or reset link.
    password_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Wrong passwords in a row, and the lockout they earned.
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Every session begun before this is over ("sign out everywhere", a password reset, deactivation).
    sessions_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    roles: Mapped[list[UserRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    memberships: Mapped[list[Membership]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    region_memberships: Mapped[list[RegionMembership]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)


class Membership(Base):
    """A user belongs to a branch (and so to its region)."""

    __tablename__ = "memberships"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    branch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("branches.id"), primary_key=True)
    branch: Mapped[Branch] = relationship(lazy="joined")


class RegionMembership(Base):
    """A user belongs to a region as a whole (a regional manager's scope, beyond their branches)."""

    __tablename__ = "region_memberships"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    region_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("regions.id"), primary_key=True)
    region: Mapped[Region] = relationship(lazy="joined")


class ApiToken(Base):
    """A bearer token; only its SHA-256 is kept (tokens are 256-bit random, so no salt is needed).

    ``kind``: ``personal`` (made by its owner), ``cli`` (printed by ``pettycash create-user``),
    ``demo`` (the demo users', refused in production).
    """

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default="personal")
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PasswordLink(Base):
    """A one-time link that sets a password: an invitation or a reset. Only its SHA-256 is kept."""

    __tablename__ = "password_links"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # invitation | reset
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RecoveryCode(Base):
    """A single-use code that stands in for the authenticator at sign-in; only its SHA-256 is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebSession(Base):
    """A signed-in browser's session when there is no Redis (embedded mode); keyed by the SHA-256
    of the id its cookie carries."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    data: Mapped[dict[str, object]] = mapped_column(JSONType)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SecurityEvent(Base):
    """Something that matters to who may do what: sign-ins, lockouts, credentials, roles (append-only)."""

    __tablename__ = "security_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    type: Mapped[str] = mapped_column(String(48))
    actor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actor_username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    subject_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    subject_username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(256), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")


Index("ix_security_events_at", SecurityEvent.at)
Index("ix_security_events_type_at", SecurityEvent.type, SecurityEvent.at)
Index("ix_security_events_subject_at", SecurityEvent.subject_id, SecurityEvent.at)


class PendingCommand(Base):
    """A command whose reply came too late for its request: who may read its status."""

    __tablename__ = "pending_commands"

    message_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    resource: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdempotencyRecord(Base):
    """A POST made with an ``Idempotency-Key``: what was asked and, once answered, the answer.

    ``status_code`` is empty while the first request is in flight; a duplicate then gets 409.
    """

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    # SHA-256 of method, path and canonical body: "the same request" without keeping the body.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    location: Mapped[str | None] = mapped_column(String(512), nullable=True)
    body: Mapped[str | None] = mapped_column(String, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
