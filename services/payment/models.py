"""The payment service's tables (no other code reads or writes them)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db.types import JSONType, UTCDateTime

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class PayableRequisition(Base):
    """What payment knows of a requisition, merged from events that may arrive in any order.

    ``RequisitionApproved`` brings who asked and who approved (segregation of duties) and
    the payee; ``FundsReserved`` says the ledger holds the money; ``RequisitionCancelled``
    refuses any later execution. Each sets its own columns, so the order does not matter.
    """

    __tablename__ = "payable_requisitions"

    requisition_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    voucher_no: Mapped[str | None] = mapped_column(String(48), nullable=True)
    branch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    region_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    requester_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approver_ids: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    amount_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    payee_name: Mapped[str | None] = mapped_column(String(120), nullable=True)
    payee_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    payee_account_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hold_transfer_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reserved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Payment(Base):
    """One per requisition; its id is the idempotency key towards the provider."""

    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    requisition_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    branch_id: Mapped[str] = mapped_column(String(64), index=True)
    region_id: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payee_name: Mapped[str] = mapped_column(String(120))
    payee_method: Mapped[str] = mapped_column(String(16))
    payee_account_ref: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    executions: Mapped[int] = mapped_column(Integer)
    # Provider calls in the current execution (the retry budget is per execution).
    attempts: Mapped[int] = mapped_column(Integer)
    executor_id: Mapped[str] = mapped_column(String(64))
    executor_name: Mapped[str] = mapped_column(String(120))
    provider: Mapped[str | None] = mapped_column(String(32), nullable=True)
    provider_reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The job run calling the provider right now, and until when its lease holds.
    call_claim: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    call_claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    redrives: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # the payment summary's period
    # The last progress (execution, attempt, re-drive): the reconciler's measure of "stuck".
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PaymentExecution(Base):
    """One OTP-confirmed execution of a payment (the first, or a retry after a failure)."""

    __tablename__ = "payment_executions"
    __table_args__ = (UniqueConstraint("payment_id", "number", name="uq_payment_executions_number"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    executor_id: Mapped[str] = mapped_column(String(64))
    executor_name: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    # The payment run that started this execution (None: paid on its own).
    run_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True, index=True)


class PaymentRun(Base):
    """Many ready payments authorised with one code (and a second officer's above a total).

    ``state`` is ``awaiting_second`` (the maker authorised; a checker must), ``started`` (each
    included item's execution was started, once) or ``cancelled`` (never started). How far a
    started run got is its items' executions' outcomes, read from the payments themselves.
    """

    __tablename__ = "payment_runs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    item_count: Mapped[int] = mapped_column(Integer)
    # The total above which a second officer must authorise, as it stood when the run was made.
    dual_above_minor: Mapped[int] = mapped_column(BigInteger)
    maker_id: Mapped[str] = mapped_column(String(64))
    maker_name: Mapped[str] = mapped_column(String(120))
    checker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checker_name: Mapped[str | None] = mapped_column(String(120), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancel_reason: Mapped[str] = mapped_column(Text, default="")


class PaymentRunItem(Base):
    """One requisition selected for a run: included (its execution ``execution``) or left out, and why."""

    __tablename__ = "payment_run_items"

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_runs.id"), primary_key=True)
    requisition_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    payment_id: Mapped[uuid.UUID] = mapped_column()
    voucher_no: Mapped[str] = mapped_column(String(48), default="")
    branch_id: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payee_name: Mapped[str] = mapped_column(String(120))
    payee_method: Mapped[str] = mapped_column(String(16))
    included: Mapped[bool] = mapped_column(Boolean)
    execution: Mapped[int | None] = mapped_column(Integer, nullable=True)
    refusal: Mapped[str] = mapped_column(String(48), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class ProviderAttempt(Base):
    """One call to the provider, whatever it came to (append-only)."""

    __tablename__ = "provider_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"), index=True)
    execution: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class OtpEnrolment(Base):
    """A user's TOTP secret, sealed with Fernet (``PETTYCASH_OTP_ENCRYPTION_KEY``): treasury pays with
    it, and every second-factor role signs in with it. ``status`` is pending, active or reset (the
    secret emptied: a new one must be enrolled)."""

    __tablename__ = "otp_enrolments"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    sealed_secret: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OtpStepUse(Base):
    """A time step a user spent: the primary key makes "each step once" a database fact."""

    __tablename__ = "otp_step_uses"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    time_step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    requisition_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OtpGuard(Base):
    """A user's run of consecutive failed codes (paying and signing in share it) and the lockout it earned."""

    __tablename__ = "otp_guards"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OtpAttempt(Base):
    """Every OTP-bearing request, accepted or refused: who, what, the result and why (append-only)."""

    __tablename__ = "otp_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    requisition_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True, index=True)
    result: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(48))
    detail: Mapped[str] = mapped_column(Text, default="")
    time_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    message_id: Mapped[uuid.UUID] = mapped_column()
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProviderTransfer(Base):
    """The built-in providers' own books: one row per (provider, idempotency key).

    It stands for the provider's side of the wire (the cash box's voucher book, the
    simulated mobile-money and bank systems), so it commits on its own, never with the
    payment service's transaction: a disbursement that dies after the provider paid finds
    the money already sent when it runs again, as it would at a real provider.
    """

    __tablename__ = "provider_transfers"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    idempotency_key: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    account_ref: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    first_call_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
