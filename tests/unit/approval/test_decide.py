"""``decide``: every refusal by the rule that makes it, in order, and every outcome."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.approval.domain import (
    DEFAULT_POLICY,
    Accepted,
    Attempt,
    CaseStatus,
    Decision,
    DecisionFacts,
    Person,
    Refusal,
    Rule,
    StepFacts,
    StepOutcome,
    decide,
)
from tests.unit.approval.factories import (
    REQUESTER,
    a_person,
    a_step,
    an_admin,
    an_attempt,
    an_urgency_step,
    branch_manager,
    case_facts,
    decision_facts,
)


def refusal_of(facts: DecisionFacts, attempt: Attempt) -> Refusal:
    verdict = decide(facts, attempt, DEFAULT_POLICY)
    assert isinstance(verdict, Refusal), verdict
    return verdict


def accepted(facts: DecisionFacts, attempt: Attempt) -> Accepted:
    verdict = decide(facts, attempt, DEFAULT_POLICY)
    assert isinstance(verdict, Accepted), verdict
    return verdict


# -- refusals, one rule at a time ------------------------------------------------------


@pytest.mark.parametrize("status", sorted({*CaseStatus} - {CaseStatus.OPEN}))
def test_a_case_that_is_not_open_refuses_every_decision(status: CaseStatus) -> None:
    refusal = refusal_of(decision_facts(status=status), an_attempt())
    assert refusal == Refusal(
        Rule.CASE_CLOSED, 409, f"The approval case is {status.value}; nothing waits for a decision."
    )


def test_an_open_case_without_an_active_step_refuses() -> None:
    refusal = refusal_of(decision_facts(no_active_step=True), an_attempt())
    assert refusal == Refusal(Rule.NO_ACTIVE_STEP, 409, "No step of this case is waiting for a decision.")


def test_nobody_decides_on_their_own_requisition() -> None:
    alice = a_person(REQUESTER, "branch_manager", branches=("b1",))
    refusal = refusal_of(decision_facts(), an_attempt(alice))
    assert refusal == Refusal(Rule.SELF_APPROVAL, 403, "Nobody may decide on their own requisition.")


def test_an_approver_decides_once_per_chain() -> None:
    facts = decision_facts(case=case_facts(previous_deciders=("bob",)))
    refusal = refusal_of(facts, an_attempt())
    assert refusal == Refusal(Rule.APPROVER_ALREADY_IN_CHAIN, 403, "You already decided an earlier step of this chain.")


@pytest.mark.parametrize(
    "actor",
    [branch_manager("mary", branch="b2"), a_person("fiona", "finance"), an_admin()],
    ids=["another branch's manager", "the wrong role", "an admin on a step not escalated"],
)
def test_only_the_expected_approver_decides(actor: Person) -> None:
    refusal = refusal_of(decision_facts(), an_attempt(actor))
    assert refusal == Refusal(
        Rule.NOT_THE_EXPECTED_APPROVER, 403, "This step waits for a branch_manager whose scope covers the branch."
    )


def test_an_approver_limit_below_the_amount_refuses() -> None:
    facts = decision_facts(case=case_facts(major=60_000))
    refusal = refusal_of(facts, an_attempt())
    assert refusal == Refusal(
        Rule.APPROVER_LIMIT_EXCEEDED, 422, "The branch_manager approval limit (50,000 major units) is below the amount."
    )


@pytest.mark.parametrize("decision", [Decision.CONFIRM_URGENCY, Decision.REVERT_URGENCY])
def test_only_an_urgency_step_has_an_urgency_to_decide(decision: Decision) -> None:
    refusal = refusal_of(decision_facts(), an_attempt(decision=decision))
    assert refusal == Refusal(Rule.NOT_AN_URGENCY_STEP, 409, "This step is not an urgency confirmation.")


def test_an_urgency_step_is_confirmed_or_reverted_not_approved() -> None:
    refusal = refusal_of(decision_facts(step=an_urgency_step()), an_attempt(decision=Decision.APPROVE))
    assert refusal == Refusal(Rule.URGENCY_STEP, 409, "Confirm or revert the urgency of this request.")


@pytest.mark.parametrize("decision", [Decision.REJECT, Decision.REQUEST_CHANGES])
@pytest.mark.parametrize("comment", ["", "   ", "\n\t"])
def test_a_refusal_needs_a_reason(decision: Decision, comment: str) -> None:
    refusal = refusal_of(decision_facts(), an_attempt(decision=decision, comment=comment))
    assert refusal == Refusal(Rule.REASON_REQUIRED, 422, "A reason is required.")


# -- the order the rules are checked in ------------------------------------------------


def test_a_closed_case_answers_before_anything_about_the_actor() -> None:
    alice = a_person(REQUESTER, "branch_manager", branches=("b1",))
    facts = decision_facts(status=CaseStatus.APPROVED, no_active_step=True)
    assert refusal_of(facts, an_attempt(alice, Decision.REJECT, "")).rule == Rule.CASE_CLOSED


def test_who_decides_is_checked_before_what_they_decide() -> None:
    wrong_person = branch_manager("mary", branch="b2")
    attempt = an_attempt(wrong_person, Decision.REJECT, comment="")
    assert refusal_of(decision_facts(), attempt).rule == Rule.NOT_THE_EXPECTED_APPROVER
    alice = a_person(REQUESTER, "branch_manager", branches=("b1",))
    assert refusal_of(decision_facts(), an_attempt(alice, Decision.CONFIRM_URGENCY)).rule == Rule.SELF_APPROVAL


def test_the_step_kind_is_checked_before_the_reason() -> None:
    attempt = an_attempt(decision=Decision.REVERT_URGENCY, comment="")
    assert refusal_of(decision_facts(), attempt).rule == Rule.NOT_AN_URGENCY_STEP


# -- outcomes --------------------------------------------------------------------------


def test_an_approval_completes_the_step() -> None:
    assert accepted(decision_facts(), an_attempt(comment="  fine  ")) == Accepted(
        "branch_manager", Decision.APPROVE, "fine", completes_as=StepOutcome.APPROVED
    )


def test_an_urgency_confirmation_completes_the_step_as_confirmed() -> None:
    outcome = accepted(decision_facts(step=an_urgency_step()), an_attempt(decision=Decision.CONFIRM_URGENCY))
    assert outcome == Accepted(
        "branch_manager", Decision.CONFIRM_URGENCY, "ok", completes_as=StepOutcome.URGENCY_CONFIRMED
    )


def test_reverting_an_urgency_neither_closes_nor_completes() -> None:
    outcome = accepted(decision_facts(step=an_urgency_step()), an_attempt(decision=Decision.REVERT_URGENCY))
    assert outcome == Accepted("branch_manager", Decision.REVERT_URGENCY, "ok")


@pytest.mark.parametrize(
    ("decision", "status"),
    [(Decision.REJECT, CaseStatus.REJECTED), (Decision.REQUEST_CHANGES, CaseStatus.CHANGES_REQUESTED)],
)
@pytest.mark.parametrize("step", [a_step(), an_urgency_step()], ids=["approval step", "urgency step"])
def test_a_rejection_or_a_request_for_changes_closes_the_case(
    decision: Decision, status: CaseStatus, step: StepFacts
) -> None:
    outcome = accepted(decision_facts(step=step), an_attempt(decision=decision, comment=" No receipt "))
    assert outcome == Accepted("branch_manager", decision, "No receipt", closes_as=status)


def test_an_admin_acts_on_an_escalated_step_as_admin() -> None:
    facts = decision_facts(step=a_step(admin_may_act=True))
    assert accepted(facts, an_attempt(an_admin())).acting == "admin"


def test_an_admin_the_policy_gives_no_limit_is_refused_in_words() -> None:
    facts = decision_facts(step=a_step(admin_may_act=True))
    policy = replace(DEFAULT_POLICY, limits={k: v for k, v in DEFAULT_POLICY.limits.items() if k != "admin"})
    refusal = decide(facts, an_attempt(an_admin()), policy)
    assert refusal == Refusal(Rule.APPROVER_LIMIT_EXCEEDED, 422, "The policy gives the admin role no approval limit.")


def test_the_expected_approver_acts_in_their_own_role_even_when_an_admin_may_too() -> None:
    facts = decision_facts(step=a_step(admin_may_act=True))
    assert accepted(facts, an_attempt()).acting == "branch_manager"


def test_a_regional_manager_acts_for_every_branch_of_the_region() -> None:
    rita = a_person("rita", "regional_manager", regions=("r1",))
    facts = decision_facts(step=a_step("regional_manager"), case=case_facts(branch_id="b7", major=30_000))
    assert accepted(facts, an_attempt(rita)).acting == "regional_manager"
