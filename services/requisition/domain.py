"""Requisition rules: the state machine and voucher numbering. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from shared.contracts.money import Money
from shared.statemachine import InvalidTransition, StateMachine  # noqa: F401 - callers catch what transition() raises


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    PENDING_APPROVAL = "pending_approval"
    PENDING_URGENCY_CONFIRMATION = "pending_urgency_confirmation"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    AWAITING_FUNDS = "awaiting_funds"
    RESERVED = "reserved"
    PAYMENT_PROCESSING = "payment_processing"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"


S = Status
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.DRAFT: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.SUBMITTED: frozenset({S.PENDING_APPROVAL, S.PENDING_URGENCY_CONFIRMATION, S.CANCELLED}),
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.CHANGES_REQUESTED, S.CANCELLED}),
    S.PENDING_URGENCY_CONFIRMATION: frozenset({S.APPROVED, S.REJECTED, S.PENDING_APPROVAL, S.CANCELLED}),
    S.CHANGES_REQUESTED: frozenset({S.SUBMITTED, S.CANCELLED, S.EXPIRED}),
    S.APPROVED: frozenset({S.RESERVED, S.AWAITING_FUNDS, S.CANCELLED}),
    S.AWAITING_FUNDS: frozenset({S.RESERVED, S.CANCELLED}),
    S.RESERVED: frozenset({S.PAYMENT_PROCESSING, S.CANCELLED}),
    S.PAYMENT_PROCESSING: frozenset({S.PAID, S.PAYMENT_FAILED, S.RESERVED}),
    S.PAYMENT_FAILED: frozenset({S.PAYMENT_PROCESSING, S.CANCELLED}),
    S.PAID: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
}


MACHINE = StateMachine("a requisition", Status, TRANSITIONS)
transition = MACHINE.move  # the new state, or InvalidTransition if the machine has no such edge
TERMINAL = MACHINE.final


def voucher_number(branch_code: str, seq: int) -> str:
    """The printed voucher number: branch code and a zero-padded per-branch sequence."""
    return f"{branch_code}-{seq:06d}"


EDITABLE: frozenset[Status] = frozenset({S.DRAFT, S.CHANGES_REQUESTED})
SUBMITTABLE = EDITABLE
RECEIPTS_ALLOWED: frozenset[Status] = frozenset(
    {S.DRAFT, S.SUBMITTED, S.PENDING_APPROVAL, S.PENDING_URGENCY_CONFIRMATION, S.CHANGES_REQUESTED}
)
# A requester may withdraw until someone decides; after approval only finance or an admin
# may cancel (the ledger then releases the hold).
CANCELLABLE_BY_REQUESTER = RECEIPTS_ALLOWED
CANCELLABLE_BY_OFFICE: frozenset[Status] = CANCELLABLE_BY_REQUESTER | {
    S.APPROVED,
    S.AWAITING_FUNDS,
    S.RESERVED,
    S.PAYMENT_FAILED,
}
# Statuses not counted against a branch's monthly cap: money that will never be paid.
NOT_COMMITTED: frozenset[Status] = frozenset({S.DRAFT, S.REJECTED, S.CANCELLED, S.EXPIRED, S.PAYMENT_FAILED})

# How far along the happy path a status is; an event that needs a later stage than the
# requisition has reached arrived early (events from two services race), so it waits.
PROGRESS: dict[Status, int] = {
    S.DRAFT: 0,
    S.SUBMITTED: 1,
    S.PENDING_APPROVAL: 2,
    S.PENDING_URGENCY_CONFIRMATION: 2,
    S.CHANGES_REQUESTED: 2,
    S.APPROVED: 3,
    S.AWAITING_FUNDS: 4,
    S.RESERVED: 5,
    S.PAYMENT_PROCESSING: 6,
    S.PAYMENT_FAILED: 7,
    S.PAID: 8,
    S.REJECTED: 9,
    S.CANCELLED: 9,
    S.EXPIRED: 9,
}
PREREQUISITE: dict[Status, int] = {
    S.PENDING_APPROVAL: 1,
    S.PENDING_URGENCY_CONFIRMATION: 1,
    S.APPROVED: 2,
    S.REJECTED: 2,
    S.CHANGES_REQUESTED: 2,
    S.AWAITING_FUNDS: 3,
    S.RESERVED: 3,
    S.PAYMENT_PROCESSING: 5,
    S.PAID: 6,
    S.PAYMENT_FAILED: 6,
}


class CancelRefusal(StrEnum):
    """Why a cancellation is refused."""

    NOT_YOURS = "not-yours"  # neither the requester nor finance, the CFO or an admin
    TOO_LATE = "too-late"  # the requisition has gone past where that canceller may stop it


def cancel_refusal(status: Status, *, own: bool, office: bool) -> CancelRefusal | None:
    """Whether a cancellation may go ahead: the requester before a decision, the office before payment."""
    if (own and status in CANCELLABLE_BY_REQUESTER) or (office and status in CANCELLABLE_BY_OFFICE):
        return None
    return CancelRefusal.TOO_LATE if own or office else CancelRefusal.NOT_YOURS


def arrived_early(current: str, target: Status) -> bool:
    """Whether an event moving to ``target`` came before the one that makes it possible."""
    state = Status(current)
    return state not in TERMINAL and PROGRESS[state] < PREREQUISITE.get(target, 0)


@dataclass(frozen=True)
class CapRule:
    """A cap: ``kind`` is category_per_requisition or branch_monthly."""

    kind: str
    category: str | None
    branch_id: str | None
    limit: Money


def broken_cap(caps: Iterable[CapRule], branch_id: str, category: str, amount: Money, month_total: int) -> str | None:
    """The message naming the first cap the requisition breaks, or None."""
    for cap in caps:
        if cap.limit.currency != amount.currency or (cap.branch_id and cap.branch_id != branch_id):
            continue
        if cap.kind == "category_per_requisition" and cap.category == category and amount > cap.limit:
            return f"Requisitions for {category} are capped at {cap.limit} each."
        if cap.kind == "branch_monthly" and month_total + amount.minor_units > cap.limit.minor_units:
            left = Money(amount.currency, max(0, cap.limit.minor_units - month_total))
            return f"The branch's monthly cap of {cap.limit} would be exceeded ({left} left this month)."
    return None
