"""Small builders of the facts the approval rules take; each test changes only what it is about."""

from __future__ import annotations

from services.approval.domain import (
    Attempt,
    CaseFacts,
    CaseStatus,
    Decision,
    DecisionFacts,
    Person,
    StepFacts,
    StepKind,
    Submission,
)
from shared.contracts.money import Money

REQUESTER = "alice"


def kes(major: int) -> Money:
    """An amount in Kenyan shillings, given in major units."""
    return Money("KES", major * 100)


def a_person(
    user_id: str,
    *roles: str,
    branches: tuple[str, ...] = (),
    regions: tuple[str, ...] = (),
    active: bool = True,
) -> Person:
    """Someone the directory knows, with roles and the branches and regions they cover."""
    return Person(user_id, user_id, frozenset(roles), frozenset(branches), frozenset(regions), active)


def branch_manager(user_id: str = "bob", branch: str = "b1") -> Person:
    return a_person(user_id, "branch_manager", branches=(branch,))


def an_admin(user_id: str = "adam") -> Person:
    return a_person(user_id, "admin")


def case_facts(
    *,
    requester_id: str = REQUESTER,
    branch_id: str = "b1",
    region_id: str = "r1",
    major: int = 5_000,
    previous_deciders: tuple[str, ...] = (),
) -> CaseFacts:
    """A case in branch b1 (region r1), by alice, for KES 5,000 unless told otherwise."""
    return CaseFacts(requester_id, branch_id, region_id, kes(major), frozenset(previous_deciders))


def a_step(
    role: str = "branch_manager", kind: StepKind = StepKind.APPROVE, *, admin_may_act: bool = False
) -> StepFacts:
    """The active step: an approval by a branch manager unless told otherwise."""
    return StepFacts(role, kind, admin_may_act)


def an_urgency_step(role: str = "branch_manager", *, admin_may_act: bool = False) -> StepFacts:
    return a_step(role, StepKind.URGENCY_CONFIRMATION, admin_may_act=admin_may_act)


def decision_facts(
    *,
    status: CaseStatus = CaseStatus.OPEN,
    step: StepFacts | None = None,
    case: CaseFacts | None = None,
    no_active_step: bool = False,
) -> DecisionFacts:
    """An open case whose active step waits for a branch manager, unless told otherwise."""
    active = None if no_active_step else (step or a_step())
    return DecisionFacts(status, active, case or case_facts())


def an_attempt(actor: Person | None = None, decision: Decision = Decision.APPROVE, comment: str = "ok") -> Attempt:
    """Bob, the branch manager of b1, approving with a comment, unless told otherwise."""
    return Attempt(actor or branch_manager(), decision, comment)


def a_submission(*, revision: int = 1, origin: str = "branch", major: int = 5_000, urgent: bool = False) -> Submission:
    """A first, non-urgent submission from a branch for KES 5,000, unless told otherwise."""
    return Submission(revision, origin, kes(major), urgent)
