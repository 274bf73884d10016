from __future__ import annotations

from services.requisition.domain import CapRule, Status, arrived_early, broken_cap
from shared.contracts.money import Money

FUEL_CAP = CapRule("category_per_requisition", "fuel", None, Money("KES", 20_000_00))
MONTHLY = CapRule("branch_monthly", None, "b1", Money("KES", 100_000_00))


def test_category_cap_names_the_limit() -> None:
    assert broken_cap([FUEL_CAP], "b1", "fuel", Money("KES", 20_000_00), 0) is None
    message = broken_cap([FUEL_CAP], "b1", "fuel", Money("KES", 20_000_01), 0)
    assert message == "Requisitions for fuel are capped at 20,000.00 KES each."
    assert broken_cap([FUEL_CAP], "b1", "travel", Money("KES", 90_000_00), 0) is None


def test_monthly_cap_counts_what_the_branch_already_committed() -> None:
    assert broken_cap([MONTHLY], "b1", "fuel", Money("KES", 40_000_00), 60_000_00) is None
    message = broken_cap([MONTHLY], "b1", "fuel", Money("KES", 40_000_01), 60_000_00)
    assert message is not None
    assert "100,000.00 KES" in message
    assert "40,000.00 KES left" in message
    assert broken_cap([MONTHLY], "b2", "fuel", Money("KES", 10**9), 10**12) is None  # another branch's cap


def test_caps_in_another_currency_do_not_apply() -> None:
    assert broken_cap([FUEL_CAP], "b1", "fuel", Money("USD", 10**9), 0) is None


def test_events_that_arrive_before_their_prerequisite_wait() -> None:
    assert arrived_early(Status.PENDING_APPROVAL, Status.RESERVED)  # approval not seen yet
    assert arrived_early(Status.SUBMITTED, Status.APPROVED)
    assert not arrived_early(Status.CANCELLED, Status.RESERVED)  # moved on: ignore, don't wait
    assert not arrived_early(Status.PAID, Status.PAYMENT_FAILED)
