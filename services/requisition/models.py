"""The requisition service's tables (no other code reads or writes them)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db.types import UTCDateTime

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class Requisition(Base):
    __tablename__ = "requisitions"
    __table_args__ = (UniqueConstraint("branch_id", "voucher_seq", name="uq_requisitions_branch_voucher"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    voucher_no: Mapped[str] = mapped_column(String(48), unique=True)
    voucher_seq: Mapped[int] = mapped_column(Integer)
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
