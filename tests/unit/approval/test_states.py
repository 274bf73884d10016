"""The approval states: the case's transitions table, and the enums' wire form."""

from __future__ import annotations

import itertools
import json

import pytest

from services.approval.domain import (
    FINAL,
    TRANSITIONS,
    AttemptOutcome,
    CaseStatus,
    Decision,
    InvalidTransition,
    Rule,
    StepKind,
    StepOutcome,
    StepStatus,
    transition,
)

ALLOWED = sorted((a, b) for a, targets in TRANSITIONS.items() for b in targets)
REFUSED = sorted((a, b) for a, b in itertools.product(CaseStatus, CaseStatus) if b not in TRANSITIONS[a])


def test_every_status_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(CaseStatus)


@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_every_declared_transition_is_allowed(current: CaseStatus, target: CaseStatus) -> None:
    assert transition(current, target) is target
    assert transition(current.value, target) is target  # as read from the database


@pytest.mark.parametrize(("current", "target"), REFUSED)
def test_every_undeclared_transition_is_refused(current: CaseStatus, target: CaseStatus) -> None:
    with pytest.raises(InvalidTransition, match=f"that is {current} cannot become {target}$"):
        transition(current, target)


def test_the_final_states_are_those_a_closing_requisition_leaves_alone() -> None:
    assert {CaseStatus.APPROVED, CaseStatus.REJECTED, CaseStatus.CANCELLED, CaseStatus.EXPIRED} == FINAL


def test_a_decision_moves_only_an_open_case() -> None:
    for status in (CaseStatus.APPROVED, CaseStatus.REJECTED, CaseStatus.CHANGES_REQUESTED):
        assert {s for s, targets in TRANSITIONS.items() if status in targets} == {CaseStatus.OPEN}


def test_a_case_waiting_for_changes_may_still_be_withdrawn_or_lapse() -> None:
    assert TRANSITIONS[CaseStatus.CHANGES_REQUESTED] == {CaseStatus.CANCELLED, CaseStatus.EXPIRED}


def test_an_unknown_status_is_an_error_not_a_state() -> None:
    with pytest.raises(ValueError, match="'pending'"):
        transition("pending", CaseStatus.OPEN)


@pytest.mark.parametrize(
    "member",
    [*CaseStatus, *StepStatus, *StepKind, *Decision, *StepOutcome, *AttemptOutcome, *Rule],
    ids=str,
)
def test_members_are_their_plain_string_on_every_wire(member: str) -> None:
    """Database columns, event payloads, replies and snapshots keep today's strings."""
    value = member.value  # type: ignore[attr-defined]
    assert member == value
    assert str(member) == value
    assert f"{member}" == value
    assert json.dumps({"s": member}) == json.dumps({"s": value})
    assert type(str(member)) is str


def test_the_stored_strings_are_unchanged() -> None:
    assert [s.value for s in CaseStatus] == [
        "open",
        "approved",
        "rejected",
        "changes_requested",
        "cancelled",
        "expired",
    ]
    assert [s.value for s in StepStatus] == ["waiting", "active", "done", "skipped", "void"]
    assert [k.value for k in StepKind] == ["approve", "urgency_confirmation"]
    assert [d.value for d in Decision] == [
        "approve",
        "reject",
        "request_changes",
        "confirm_urgency",
        "revert_urgency",
    ]
    assert [o.value for o in StepOutcome] == ["approved", "urgency_confirmed"]
    assert [o.value for o in AttemptOutcome] == ["accepted", "refused"]


def one_of(schema: type, field: str) -> tuple[str, ...]:
    """The choices a contract's ``OneOf`` validator allows for a field."""
    return tuple(schema._declared_fields[field].validators[0].choices)  # type: ignore[attr-defined]


def test_decisions_and_step_outcomes_are_the_contracts_choices() -> None:
    from shared.contracts import payloads

    assert tuple(Decision) == one_of(payloads.DecisionPayload, "decision")
    assert tuple(StepOutcome) == one_of(payloads.ApprovalStepCompletedPayload, "decision")
