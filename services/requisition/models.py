"""The requisition service's tables (no other code reads or writes them)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db.types import UTCDateTime

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class Requisition(Base):
    __tablename__ = "requisitions"
    __table_args__ = (UniqueConstraint("branch_id", "voucher_seq", name="uq_requisitions_branch_voucher"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # Drafts have no voucher yet: numbers are issued at first submission, so they stay gap-free.
    voucher_no: Mapped[str | None] = mapped_column(String(48), unique=True, nullable=True)
    voucher_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    branch_id: Mapped[str] = mapped_column(String(64), index=True)
    branch_code: Mapped[str] = mapped_column(String(32))
    region_id: Mapped[str] = mapped_column(String(64), index=True)
    origin: Mapped[str] = mapped_column(String(16))
    requester_id: Mapped[str] = mapped_column(String(64), index=True)
    requester_name: Mapped[str] = mapped_column(String(120))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(Text)
    payee_name: Mapped[str] = mapped_column(String(120))
    payee_method: Mapped[str] = mapped_column(String(16))
    payee_account_ref: Mapped[str] = mapped_column(String(64))
    urgent: Mapped[bool] = mapped_column(Boolean)
    urgency_reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), index=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    changes_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    approval_case_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    tier: Mapped[str | None] = mapped_column(String(8), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VoucherSequence(Base):
    """The last voucher number issued per branch; bumped in the submitting transaction."""

    __tablename__ = "voucher_sequences"

    branch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_no: Mapped[int] = mapped_column(Integer)


class HistoryEntry(Base):
    """Who did what to a requisition, when, with what comment (append-only)."""

    __tablename__ = "requisition_history"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    requisition_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requisitions.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(48))
    from_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_status: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[uuid.UUID] = mapped_column()


class Receipt(Base):
    """A receipt file attached to a requisition; the bytes live in the blob store by SHA-256."""

    __tablename__ = "receipts"
    __table_args__ = (UniqueConstraint("requisition_id", "sha256", name="uq_receipt_once_per_requisition"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    requisition_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requisitions.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Cap(Base):
    """A cap checked at submission: per requisition of a category, or per branch per month."""

    __tablename__ = "caps"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(32), nullable=True)
    branch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    limit_minor: Mapped[int] = mapped_column(BigInteger)


UNRESOLVED = "status <> 'resolved'"


class Alert(Base):
    """An alert raised by any service about money that needs a person's attention.

    One unresolved alert per kind and subject (a partial unique index): a second raise folds
    into it (``count``, ``last_seen_at``). Open, then acknowledged by a person, then resolved by
    a person with a note or by itself when its cause is gone."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_unresolved_subject",
            "kind",
            "subject",
            unique=True,
            postgresql_where=text(UNRESOLVED),
            sqlite_where=text(UNRESOLVED),
        ),
        Index("ix_alerts_status", "status", "last_seen_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    message_id: Mapped[uuid.UUID] = mapped_column(unique=True)  # of its first raise
    kind: Mapped[str] = mapped_column(String(48))
    subject: Mapped[str] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    requisition_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True, index=True)
    branch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    region_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(String(32))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)  # first seen
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | acknowledged | resolved
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # "system": by itself
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolution_note: Mapped[str] = mapped_column(Text, default="")
