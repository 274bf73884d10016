from __future__ import annotations

import itertools

import pytest

from services.requisition.domain import (
    TERMINAL,
    TRANSITIONS,
    CancelRefusal,
    InvalidTransition,
    Status,
    cancel_refusal,
    transition,
    voucher_number,
)

ALLOWED = sorted((a, b) for a, targets in TRANSITIONS.items() for b in targets)
REFUSED = sorted((a, b) for a, b in itertools.product(Status, Status) if b not in TRANSITIONS[a])


@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_every_allowed_transition(current: Status, target: Status) -> None:
    assert transition(current, target) is target


@pytest.mark.parametrize(("current", "target"), REFUSED)
def test_every_other_transition_is_refused_with_a_reason(current: Status, target: Status) -> None:
    with pytest.raises(InvalidTransition, match=f"{current} cannot become {target}"):
        transition(current, target)


def test_terminal_states_have_no_way_out() -> None:
    assert {Status.PAID, Status.REJECTED, Status.CANCELLED, Status.EXPIRED} == TERMINAL


def test_every_state_is_reachable_from_draft() -> None:
    seen, frontier = {Status.DRAFT}, [Status.DRAFT]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(Status)


def test_voucher_numbers_are_zero_padded_per_branch() -> None:
    assert voucher_number("NBO-CBD", 42) == "NBO-CBD-000042"


@pytest.mark.parametrize(
    ("status", "own", "office", "refusal"),
    [
        (Status.PENDING_APPROVAL, True, False, None),
        (Status.APPROVED, True, False, CancelRefusal.TOO_LATE),
        (Status.APPROVED, False, True, None),
        (Status.RESERVED, True, True, None),
        (Status.PAID, False, True, CancelRefusal.TOO_LATE),
        (Status.PENDING_APPROVAL, False, False, CancelRefusal.NOT_YOURS),
        (Status.PAID, False, False, CancelRefusal.NOT_YOURS),
    ],
)
def test_who_may_cancel_until_when(status: Status, own: bool, office: bool, refusal: CancelRefusal | None) -> None:
    assert cancel_refusal(status, own=own, office=office) is refusal
