"""Properties of the approval rules over generated cases, steps, people and attempts."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import event, given
from hypothesis import strategies as st

from services.approval.domain import (
    APPROVER_ROLES,
    DEFAULT_POLICY,
    FINAL,
    TRANSITIONS,
    Accepted,
    Attempt,
    CaseFacts,
    CaseStatus,
    Decision,
    DecisionFacts,
    InvalidTransition,
    Person,
    Refusal,
    Rule,
    StepFacts,
    StepKind,
    decide,
    in_scope,
    transition,
)
from shared.contracts.money import Money
from shared.contracts.roles import ROLES

USERS = ("alice", "bob", "rita", "fiona", "carol", "adam")
REQUESTERS = ("alice", "sam", "tom", "uma")
BRANCHES = ("b1", "b2")
REGIONS = ("r1", "r2")


def subsets(values: tuple[str, ...]) -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(values))


cases = st.builds(
    CaseFacts,
    requester_id=st.sampled_from(REQUESTERS),
    branch_id=st.sampled_from(BRANCHES),
    region_id=st.sampled_from(REGIONS),
    amount=st.builds(Money, st.just("KES"), st.integers(min_value=1, max_value=10**8)),
    previous_deciders=st.frozensets(st.sampled_from(USERS), max_size=2),
)
steps = st.builds(
    StepFacts,
    role=st.sampled_from(sorted(APPROVER_ROLES)),
    kind=st.sampled_from(StepKind),
    admin_may_act=st.booleans(),
)
# Open cases with a step waiting (where people are looked at), and any case at all.
waiting_cases = st.builds(DecisionFacts, status=st.just(CaseStatus.OPEN), step=steps, case=cases)
facts = waiting_cases | st.builds(DecisionFacts, status=st.sampled_from(CaseStatus), step=st.none() | steps, case=cases)
comments = st.sampled_from(("", "  ", "ok", " because "))


@st.composite
def attempts_on(draw: st.DrawFn, facts: DecisionFacts) -> Attempt:
    """An attempt by someone who often holds the step's role, or admin, near the case's branch."""
    role = facts.step.role if facts.step else "admin"
    roles = draw(st.sampled_from(((role,), ("admin",), ()))) + tuple(draw(subsets(ROLES)))
    actor = Person(
        draw(st.sampled_from(USERS)),
        "someone",
        frozenset(roles),
        draw(subsets(BRANCHES)) | {facts.case.branch_id} if draw(st.booleans()) else draw(subsets(BRANCHES)),
        draw(subsets(REGIONS)) | {facts.case.region_id} if draw(st.booleans()) else draw(subsets(REGIONS)),
        draw(st.booleans()) or draw(st.booleans()),
    )
    return Attempt(actor, draw(st.sampled_from(Decision)), draw(comments))


@given(st.data())
def test_the_requester_never_decides_their_own_case(data: st.DataObject) -> None:
    case = data.draw(facts)
    attempt = data.draw(attempts_on(case))
    own = replace(case, case=replace(case.case, requester_id=attempt.actor.user_id))
    verdict = decide(own, attempt, DEFAULT_POLICY)
    assert isinstance(verdict, Refusal)
    if own.status == CaseStatus.OPEN and own.step is not None:
        assert verdict.rule == Rule.SELF_APPROVAL


@given(st.data())
def test_an_accepted_decision_keeps_every_invariant(data: st.DataObject) -> None:
    case = data.draw(waiting_cases)
    attempt = data.draw(attempts_on(case))
    verdict = decide(case, attempt, DEFAULT_POLICY)
    event(str(verdict.rule) if isinstance(verdict, Refusal) else "accepted")
    if isinstance(verdict, Refusal):
        return
    assert case.step is not None
    actor, step = attempt.actor, case.step
    assert actor.user_id != case.case.requester_id
    assert actor.user_id not in case.case.previous_deciders
    assert in_scope(actor, step.role, case.case) or (step.admin_may_act and "admin" in actor.roles)
    assert verdict.acting in (step.role, "admin")
    assert DEFAULT_POLICY.covers(verdict.acting, case.case.amount)
    if verdict.decision in (Decision.CONFIRM_URGENCY, Decision.REVERT_URGENCY):
        assert step.kind == StepKind.URGENCY_CONFIRMATION
    if verdict.decision == Decision.APPROVE:
        assert step.kind == StepKind.APPROVE
    assert verdict.comment == attempt.comment.strip()
    assert verdict.comment or verdict.decision not in (Decision.REJECT, Decision.REQUEST_CHANGES)


@given(st.data())
def test_a_refusal_always_names_a_rule_and_a_client_error(data: st.DataObject) -> None:
    case = data.draw(facts)
    verdict = decide(case, data.draw(attempts_on(case)), DEFAULT_POLICY)
    assert isinstance(verdict, Accepted | Refusal)
    if isinstance(verdict, Refusal):
        assert verdict.rule in set(Rule)
        assert verdict.status in (403, 409, 422)


@given(st.sampled_from(CaseStatus), st.lists(st.sampled_from(CaseStatus), max_size=12))
def test_a_case_never_leaves_a_final_state(start: CaseStatus, targets: list[CaseStatus]) -> None:
    status = start
    for target in targets:
        try:
            moved = transition(status, target)
        except InvalidTransition:
            assert target not in TRANSITIONS[status]
            continue
        assert status not in FINAL
        status = moved
    assert start not in FINAL or status == start
