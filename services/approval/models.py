"""The approval service's tables (no other code reads or writes them)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.db.types import JSONType, UTCDateTime

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata
    type_annotation_map = {dict[str, Any]: JSONType, list[str]: JSONType}


class PolicyVersion(Base):
    """One version of the approval policy; the newest is in force. Never updated."""

    __tablename__ = "policy_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    policy: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))


class Approver(Base):
    """The service's read model of the gateway's users (UserDirectoryUpdated events)."""

    __tablename__ = "approvers"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    full_name: Mapped[str] = mapped_column(String(120))
    roles: Mapped[list[str]] = mapped_column()
    branch_ids: Mapped[list[str]] = mapped_column()
    region_ids: Mapped[list[str]] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApprovalCase(Base):
    """One requisition's journey through its approval chain (a revision per resubmission)."""

    __tablename__ = "approval_cases"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    requisition_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    voucher_no: Mapped[str] = mapped_column(String(48))
    branch_id: Mapped[str] = mapped_column(String(64), index=True)
    region_id: Mapped[str] = mapped_column(String(64), index=True)
    origin: Mapped[str] = mapped_column(String(16))
    requester_id: Mapped[str] = mapped_column(String(64))
    requester_name: Mapped[str] = mapped_column(String(120), default="")
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str] = mapped_column(String(32))
    urgent: Mapped[bool] = mapped_column(Boolean)
    urgency_reason: Mapped[str] = mapped_column(Text, default="")
    payee: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    reused_receipts: Mapped[list[str]] = mapped_column(default=list)
    fast_track: Mapped[bool] = mapped_column(Boolean, default=False)
    tier: Mapped[str] = mapped_column(String(8))
    policy_version: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(24), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Indexed for the approval turnaround (the cases closed in a period; those not closed before it).
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    steps: Mapped[list[ApprovalStep]] = relationship(
        order_by="ApprovalStep.seq", cascade="all, delete-orphan", lazy="selectin"
    )


# A step that was escalated: overdue at its SLA, or sent up for a stated reason.
ESCALATED = "sla_escalated OR escalation_reason <> ''"


class ApprovalStep(Base):
    """A step of the chain: a role to act, in order; at most one is active at a time."""

    __tablename__ = "approval_steps"
    __table_args__ = (
        UniqueConstraint("case_id", "revision", "seq", name="uq_step_order"),
        # The few escalated steps' cases (the approval turnaround counts the cases with one).
        Index("ix_approval_steps_escalated", "case_id", postgresql_where=text(ESCALATED), sqlite_where=text(ESCALATED)),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("approval_cases.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(24))  # approve | urgency_confirmation
    status: Mapped[str] = mapped_column(String(16), index=True)  # waiting | active | done | skipped | void
    admin_may_act: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_reason: Mapped[str] = mapped_column(Text, default="")
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    sla_escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_by_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    acted_as: Mapped[str | None] = mapped_column(String(32), nullable=True)
    decision: Mapped[str | None] = mapped_column(String(24), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, nullable=True, index=True
    )  # the turnaround's period
    comment: Mapped[str] = mapped_column(Text, default="")


class DecisionAttempt(Base):
    """Every attempt to decide, accepted or refused, with the rule that refused it."""

    __tablename__ = "decision_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    requisition_id: Mapped[uuid.UUID] = mapped_column(index=True)
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(24))
    outcome: Mapped[str] = mapped_column(String(16))  # accepted | refused
    rule: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)
