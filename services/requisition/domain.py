"""Requisition rules: the state machine and voucher numbering. Pure, no I/O."""

from __future__ import annotations

from enum import StrEnum


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
    S.APPROVED: frozenset({S.RESERVED, S.AWAITING_FUNDS}),
    S.AWAITING_FUNDS: frozenset({S.RESERVED, S.CANCELLED}),
    S.RESERVED: frozenset({S.PAYMENT_PROCESSING, S.CANCELLED}),
    S.PAYMENT_PROCESSING: frozenset({S.PAID, S.PAYMENT_FAILED, S.RESERVED}),
    S.PAYMENT_FAILED: frozenset({S.PAYMENT_PROCESSING, S.CANCELLED}),
    S.PAID: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
}
TERMINAL: frozenset[Status] = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


class InvalidTransition(ValueError):
    """A move the state machine does not allow."""

    def __init__(self, current: Status, target: Status) -> None:
        super().__init__(f"a requisition that is {current} cannot become {target}")
        self.current = current
        self.target = target


def transition(current: str, target: Status) -> Status:
    """The new status, or :class:`InvalidTransition` if the machine has no such edge."""
    state = Status(current)
    if target not in TRANSITIONS[state]:
        raise InvalidTransition(state, target)
    return target


def voucher_number(branch_code: str, seq: int) -> str:
    """The printed voucher number: branch code and a zero-padded per-branch sequence."""
    return f"{branch_code}-{seq:06d}"
