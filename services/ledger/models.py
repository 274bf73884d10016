"""The ledger service's tables (no other code reads or writes them)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db.types import JSONType, UTCDateTime

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class Account(Base):
    """An account of one currency. The four totals are a cache of its transfers, updated in
    the same transaction under a row lock; ``verify_balances`` recomputes and compares."""

    __tablename__ = "accounts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(96), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # bank | float | expense | over_short
    currency: Mapped[str] = mapped_column(String(3))
    branch_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    branch_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    region_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Transfer(Base):
    """An immutable movement: debit one account, credit another, same currency.

    ``pending`` transfers are holds; a later ``post`` or ``void`` names the hold in
    ``pending_id``, which is unique, so a hold is resolved exactly once, as a database fact.
    Ids derive from the business event, so a redelivered message finds its transfer done.
    """

    __tablename__ = "transfers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    debit_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    credit_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(16))  # funding | hold | post | void | reversal
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    pending_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("transfers.id"), unique=True, nullable=True)
    reversal_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("transfers.id"), unique=True, nullable=True)
    requisition_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True, index=True)
    memo: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # The general ledger export pages through transfers in the order they were written.
    __table_args__ = (Index("ix_transfers_created_at_id", "created_at", "id"),)


class AwaitingFunds(Base):
    """Approved requisitions the float could not cover yet, served in approval order."""

    __tablename__ = "awaiting_funds"

    requisition_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    branch_id: Mapped[str] = mapped_column(String(64), index=True)
    region_id: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Replenishment(Base):
    """A request to move money from the bank to a float: treasury asks, finance or CFO decides."""

    __tablename__ = "replenishments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    branch_id: Mapped[str] = mapped_column(String(64), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # requested | approved | rejected
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    comment: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decision_comment: Mapped[str] = mapped_column(Text, default="")
    transfer_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)


class BalanceCheck(Base):
    """The result of one check of every cached balance against the transfers (a scheduled job;
    the trial balance shows the last one instead of reading every transfer per request)."""

    __tablename__ = "balance_checks"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cache_mismatches: Mapped[list[str]] = mapped_column(JSONType)
    negative_floats: Mapped[list[str]] = mapped_column(JSONType)
    transfers: Mapped[int] = mapped_column(BigInteger)


class BranchLevels(Base):
    """A branch's float levels, as the gateway's directory last announced them
    (BranchDirectoryUpdated): the reorder level and imprest amount, each unset or set as money."""

    __tablename__ = "branch_levels"
    __table_args__ = (
        # An amount without its currency (or a currency without an amount) is no level at all.
        CheckConstraint(
            "(reorder_level_minor IS NULL) = (reorder_level_currency IS NULL)", name="ck_branch_levels_reorder_level"
        ),
        CheckConstraint("(imprest_minor IS NULL) = (imprest_currency IS NULL)", name="ck_branch_levels_imprest"),
    )

    branch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    branch_code: Mapped[str] = mapped_column(String(32))
    region_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    head_office: Mapped[bool] = mapped_column(Boolean)
    reorder_level_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reorder_level_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    imprest_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    imprest_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    # When the gateway made the update this row holds (its envelope's occurred_at): an older
    # update delivered later never overwrites a newer one.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FloatDay(Base):
    """One float's day, kept with every transfer that moves it (the dashboard's history and the
    trailing spend it projects from): money in from the bank, money out to expenses by
    category (a reversal takes it back), and the balance and available amount after the day's
    last transfer. ``id``: ``<account id>:<YYYY-MM-DD>`` (UTC days)."""

    __tablename__ = "float_days"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    day: Mapped[date] = mapped_column(Date)
    branch_id: Mapped[str] = mapped_column(String(64), index=True)
    region_id: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    funded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    spent_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    spent_by_category: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    closing_balance_minor: Mapped[int] = mapped_column(BigInteger)
    closing_available_minor: Mapped[int] = mapped_column(BigInteger)

    # Fund health reads a float's days of a period, and the last one before it; spending reads
    # every float's days of a period.
    __table_args__ = (
        Index("ix_float_days_account_day", "account_id", "day"),
        Index("ix_float_days_day", "day"),
    )


class AccountDay(Base):
    """One account's day, kept with every transfer that moves it (the trial balance at a date):
    what the day's transfers added to its debits and credits, posted and pending, by the one
    posting rule (``domain.movement_of``; a post or void lowers the pending side, so a pending
    figure of a day may be negative). An account's totals at the end of a day are the sums of
    its days up to it. UTC days."""

    __tablename__ = "account_days"

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)

    # The trial balance at a date sums every account's days up to it.
    __table_args__ = (Index("ix_account_days_day", "day"),)


class CashCount(Base):
    """A float's till counted by denomination, against the ledger's book balance at that moment.
    A difference is a variance: ``pending`` until finance (the CFO above the limit) approves it,
    which posts it to the branch's over/short account, or rejects it; no difference: ``balanced``."""

    __tablename__ = "cash_counts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    branch_id: Mapped[str] = mapped_column(String(64), index=True)
    region_id: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    denominations: Mapped[dict[str, int]] = mapped_column(JSONType)
    counted_minor: Mapped[int] = mapped_column(BigInteger)
    book_minor: Mapped[int] = mapped_column(BigInteger)
    variance_minor: Mapped[int] = mapped_column(BigInteger)  # counted less book: over (+) or short (-)
    counted_by: Mapped[str] = mapped_column(String(64))
    counted_by_name: Mapped[str] = mapped_column(String(64))
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    comment: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))  # balanced | pending | approved | rejected
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decision_comment: Mapped[str] = mapped_column(Text, default="")
    transfer_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
