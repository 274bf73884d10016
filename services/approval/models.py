"""The approval service's tables (no other code reads or writes them)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db.types import UTCDateTime

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class ApprovalCase(Base):
    """One requisition's journey through its approval chain."""

    __tablename__ = "approval_cases"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    requisition_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    voucher_no: Mapped[str] = mapped_column(String(48))
    branch_id: Mapped[str] = mapped_column(String(64), index=True)
    region_id: Mapped[str] = mapped_column(String(64), index=True)
    origin: Mapped[str] = mapped_column(String(16))
    requester_id: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str] = mapped_column(String(32))
    urgent: Mapped[bool] = mapped_column(Boolean)
    tier: Mapped[str] = mapped_column(String(8))
    policy_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(24), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
