"""Approval use cases in process: routing a submission to its tier's chain, decisions under the
invariants (each refusal by its rule), urgency, escalation, the policy, closing a case."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.approval import service
from services.approval.models import ApprovalCase, DecisionAttempt
from shared.contracts import catalog
from shared.contracts.catalog import EventSpec
from shared.contracts.envelope import Actor
from shared.messaging.errors import DomainError
from tests.factories import (
    ADMIN,
    ALICE,
    BOB,
    CAROL,
    DEMO_PEOPLE,
    FIONA,
    MARY,
    MSA_01,
    NBO_CBD,
    NBO_WST,
    RITA,
    SAM,
    WES,
    an_actor,
    command,
    decision,
    directory_entry,
    event,
    kes,
    maintenance,
    policy,
    receipt_attached,
    requisition_closed,
    requisition_submitted,
)
from tests.usecase.conftest import Harness

# A manager of NBO-CBD who is its regional manager too: one person, two roles in one chain.
DUAL = an_actor("dual", "branch_manager", "regional_manager", branches=[NBO_CBD])


@pytest.fixture(autouse=True)
def directory(approval_uc: Harness) -> None:
    """The approval service's read model of the users, as the gateway announces them."""
    for person in (*DEMO_PEOPLE, DUAL):
        approval_uc.run(
            service.on_user_directory_updated, event(catalog.USER_DIRECTORY_UPDATED, directory_entry(person))
        )


def submitted(uc: Harness, requester: Actor = ALICE, branch: Any = NBO_CBD, **fields: Any) -> str:
    """A requisition submitted (``RequisitionSubmitted``) and routed; its id."""
    payload = requisition_submitted(requester, branch, **fields)
    uc.run(service.on_requisition_submitted, event(catalog.REQUISITION_SUBMITTED, payload, requester))
    return str(payload["requisition_id"])


def decide(uc: Harness, actor: Actor, rid: str, what: str = "approve", comment: str = "ok", **more: Any) -> Any:
    return uc.run(
        service.record_decision, command(catalog.RECORD_DECISION, decision(rid, what, comment, **more), actor)
    )


def refused(uc: Harness, actor: Actor, rid: str, what: str = "approve", comment: str = "ok") -> DomainError:
    """A decision the rules refuse, recorded as the runtime records it (``record_refused_decision``)."""
    envelope = command(catalog.RECORD_DECISION, decision(rid, what, comment), actor)
    return uc.refuse(service.record_decision, envelope, on_refusal=service.record_refused_decision)


def case_of(uc: Harness, rid: str) -> ApprovalCase:
    return uc.scalar(select(ApprovalCase).where(ApprovalCase.requisition_id == uuid.UUID(rid)))


def current_steps(case: ApprovalCase) -> list[tuple[str, str]]:
    return [(s.role, s.status) for s in case.steps if s.revision == case.revision]


# -- routing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("major", "tier", "chain"),
    [
        (5_000, "T1", ["branch_manager"]),
        (30_000, "T2", ["branch_manager", "regional_manager"]),
        (100_000, "T3", ["regional_manager", "finance"]),
        (300_000, "T4", ["finance", "cfo"]),
    ],
)
def test_a_submission_opens_a_case_on_its_tiers_chain(
    approval_uc: Harness, major: int, tier: str, chain: list[str]
) -> None:
    rid = submitted(approval_uc, amount=kes(major))
    assert approval_uc.emitted_types() == ["ApprovalCaseOpened"]
    opened = approval_uc.one("ApprovalCaseOpened")
    assert (opened["tier"], opened["chain"], opened["policy_version"]) == (tier, chain, 1)
    assert (opened["fast_track"], opened["escalations"]) == (False, [])
    case = case_of(approval_uc, rid)
    assert (case.status, str(case.id)) == ("open", opened["case_id"])
    assert current_steps(case) == [(chain[0], "active")] + [(role, "waiting") for role in chain[1:]]
    first = case.steps[0]
    assert first.due_at - first.activated_at == timedelta(hours=24)
    inbox = approval_uc.snapshot("ApprovalCaseChanged", case.id)["inbox"]
    assert inbox["step_role"] == chain[0]


def test_an_urgent_request_waits_only_for_its_final_approver_but_never_in_t4(approval_uc: Harness) -> None:
    urgent = submitted(approval_uc, amount=kes(30_000), urgent=True, urgency_reason="Generator failed at night")
    opened = approval_uc.one("ApprovalCaseOpened")
    assert (opened["fast_track"], opened["chain"]) == (True, ["regional_manager"])
    [step] = case_of(approval_uc, urgent).steps
    assert (step.kind, step.due_at - step.activated_at) == ("urgency_confirmation", timedelta(hours=2))

    top = submitted(approval_uc, amount=kes(300_000), urgent=True, urgency_reason="Payroll gap")
    assert approval_uc.one("ApprovalCaseOpened")["fast_track"] is False
    assert refused(approval_uc, FIONA, top, "confirm_urgency").code == "not-an-urgency-step"


def test_a_submission_routed_already_is_not_routed_again(approval_uc: Harness) -> None:
    payload = requisition_submitted()
    approval_uc.run(service.on_requisition_submitted, event(catalog.REQUISITION_SUBMITTED, payload, ALICE))
    approval_uc.run(service.on_requisition_submitted, event(catalog.REQUISITION_SUBMITTED, payload, ALICE))
    assert approval_uc.emitted(snapshots=True) == []
    assert len(case_of(approval_uc, str(payload["requisition_id"])).steps) == 1


def test_a_role_nobody_can_take_escalates_to_the_next_step_then_to_an_admin(approval_uc: Harness) -> None:
    # Westlands has no branch manager.
    t2 = submitted(approval_uc, WES, NBO_WST, amount=kes(30_000))
    escalated = approval_uc.one("ApprovalEscalated")
    assert (escalated["role"], escalated["escalated_to"]) == ("branch_manager", "regional_manager")
    assert approval_uc.one("ApprovalCaseOpened")["escalations"] == [escalated["reason"]]
    assert current_steps(case_of(approval_uc, t2)) == [("branch_manager", "skipped"), ("regional_manager", "active")]

    t1 = submitted(approval_uc, WES, NBO_WST, amount=kes(3_000))
    assert approval_uc.one("ApprovalEscalated")["escalated_to"] == "admin"
    assert case_of(approval_uc, t1).steps[0].admin_may_act is True
    decide(approval_uc, ADMIN, t1)
    assert approval_uc.one("RequisitionApproved")["approver_ids"] == [ADMIN.user_id]


# -- deciding -------------------------------------------------------------------------


def test_the_last_approval_approves_the_requisition(approval_uc: Harness) -> None:
    rid = submitted(approval_uc, amount=kes(5_000))
    reply = decide(approval_uc, BOB, rid, comment="fine by bob")
    assert (reply["status"], reply["body"]["status"]) == (200, "approved")
    assert approval_uc.emitted_types() == ["ApprovalStepCompleted", "RequisitionApproved"]
    step = approval_uc.one("ApprovalStepCompleted")
    assert (step["step"], step["role"], step["decision"], step["comment"]) == (
        1,
        "branch_manager",
        "approved",
        "fine by bob",
    )
    approved = approval_uc.one("RequisitionApproved")
    assert approved["approver_ids"] == [BOB.user_id]
    assert (approved["requester_id"], approved["branch_id"], approved["amount"]) == (
        ALICE.user_id,
        NBO_CBD.id,
        kes(5_000),
    )
    assert approved["payee"] == {"name": "Shell Moi Avenue", "method": "cash", "account_ref": ""}
    attempts = approval_uc.scalars(select(DecisionAttempt))
    assert [(a.actor_id, a.outcome) for a in attempts] == [(BOB.user_id, "accepted")]


def test_an_approval_before_the_last_moves_the_chain_on(approval_uc: Harness) -> None:
    rid = submitted(approval_uc, amount=kes(30_000))
    decide(approval_uc, BOB, rid)
    assert approval_uc.emitted_types() == ["ApprovalStepCompleted"]
    assert current_steps(case_of(approval_uc, rid)) == [("branch_manager", "done"), ("regional_manager", "active")]
    decide(approval_uc, RITA, rid)
    assert approval_uc.emitted_types() == ["ApprovalStepCompleted", "RequisitionApproved"]
    assert approval_uc.one("RequisitionApproved")["approver_ids"] == [BOB.user_id, RITA.user_id]


def test_nobody_decides_on_their_own_requisition(approval_uc: Harness) -> None:
    # Mary is the only branch manager of MSA-01: her own request waits for an admin instead.
    rid = submitted(approval_uc, MARY, MSA_01, amount=kes(1_000))
    assert case_of(approval_uc, rid).steps[0].admin_may_act is True
    own = refused(approval_uc, MARY, rid)
    assert (own.code, own.status) == ("self-approval", 403)
    assert approval_uc.emitted(snapshots=True) == []
    [attempt] = approval_uc.scalars(select(DecisionAttempt))
    assert (attempt.actor_id, attempt.outcome, attempt.rule) == (MARY.user_id, "refused", "self-approval")

    decide(approval_uc, ADMIN, rid, comment="approved on escalation")
    assert case_of(approval_uc, rid).steps[0].acted_as == "admin"


def test_only_the_expected_approver_decides_and_outsiders_see_no_case(approval_uc: Harness) -> None:
    rid = submitted(approval_uc, amount=kes(30_000))  # step one waits for NBO-CBD's branch manager
    for wrong in (RITA, FIONA, CAROL, ADMIN):
        refusal = refused(approval_uc, wrong, rid)
        assert (refusal.code, refusal.status) == ("not-the-expected-approver", 403), wrong.username
    for outsider in (MARY, SAM):  # another branch's manager, a staff member elsewhere
        refusal = refused(approval_uc, outsider, rid)
        assert (refusal.code, refusal.status) == ("not-found", 404), outsider.username
    assert current_steps(case_of(approval_uc, rid))[0] == ("branch_manager", "active")


def test_the_same_person_decides_once_per_chain(approval_uc: Harness) -> None:
    rid = submitted(approval_uc, amount=kes(30_000))
    decide(approval_uc, DUAL, rid, comment="as branch manager")
    again = refused(approval_uc, DUAL, rid, comment="and as regional manager")
    assert (again.code, again.status) == ("approver-already-in-chain", 403)


def test_an_approver_limit_below_the_amount_refuses(approval_uc: Harness) -> None:
    limits = {**policy()["limits"], "branch_manager": 5_000}
    approval_uc.run(service.set_policy, command(catalog.SET_POLICY, policy(limits=limits), ADMIN))
    rid = submitted(approval_uc, amount=kes(8_000))  # T1, but over a branch manager's limit now
    assert approval_uc.one("ApprovalEscalated")["escalated_to"] == "admin"
    over = refused(approval_uc, BOB, rid)
    assert (over.code, over.status) == ("approver-limit-exceeded", 422)


def test_a_rejection_needs_a_reason_and_closes_the_case(approval_uc: Harness) -> None:
    rid = submitted(approval_uc)
    no_reason = refused(approval_uc, BOB, rid, "reject", comment="  ")
    assert (no_reason.code, no_reason.status) == ("reason-required", 422)
    decide(approval_uc, BOB, rid, "reject", comment="No receipt for the last advance")
    assert approval_uc.emitted_types() == ["RequisitionRejected"]
    assert approval_uc.one("RequisitionRejected")["comment"] == "No receipt for the last advance"
    assert case_of(approval_uc, rid).status == "rejected"
    late = refused(approval_uc, BOB, rid, comment="changed my mind")
    assert (late.code, late.status) == ("case-closed", 409)


def test_changes_requested_until_a_deadline_and_the_resubmission_is_routed_afresh(approval_uc: Harness) -> None:
    payload = requisition_submitted(amount=kes(3_000))
    rid = str(payload["requisition_id"])
    approval_uc.run(service.on_requisition_submitted, event(catalog.REQUISITION_SUBMITTED, payload, ALICE))
    before = datetime.now(UTC)
    decide(approval_uc, BOB, rid, "request_changes", comment="Split fuel from repairs", deadline_hours=48)
    sent_back = approval_uc.one("ChangesRequested")
    deadline = datetime.fromisoformat(sent_back["deadline"])
    assert before + timedelta(hours=48) <= deadline <= datetime.now(UTC) + timedelta(hours=48)
    assert case_of(approval_uc, rid).status == "changes_requested"

    again = {**payload, "revision": 2, "amount": kes(2_500)}
    approval_uc.run(service.on_requisition_submitted, event(catalog.REQUISITION_SUBMITTED, again, ALICE))
    case = case_of(approval_uc, rid)
    assert (case.status, case.revision, case.amount_minor) == ("open", 2, 250_000)
    assert [(s.revision, s.status) for s in case.steps] == [(1, "done"), (2, "active")]
    decide(approval_uc, BOB, rid)  # deciding on the first revision does not bar deciding on the second
    assert approval_uc.one("RequisitionApproved")["amount"] == kes(2_500)


# -- urgency --------------------------------------------------------------------------


def test_an_urgency_is_confirmed_not_approved(approval_uc: Harness) -> None:
    rid = submitted(approval_uc, amount=kes(30_000), urgent=True, urgency_reason="Burst pipe")
    wrong = refused(approval_uc, RITA, rid, "approve")
    assert (wrong.code, wrong.status) == ("urgency-step", 409)
    decide(approval_uc, RITA, rid, "confirm_urgency", comment="Confirmed by phone")
    assert approval_uc.one("ApprovalStepCompleted")["decision"] == "urgency_confirmed"
    assert approval_uc.one("RequisitionApproved")["approver_ids"] == [RITA.user_id]


def test_a_reverted_urgency_goes_back_to_the_tiers_whole_chain(approval_uc: Harness) -> None:
    rid = submitted(approval_uc, amount=kes(30_000), urgent=True, urgency_reason="Roof leaking")
    decide(approval_uc, RITA, rid, "revert_urgency", comment="Can wait until Monday")
    assert approval_uc.one("UrgencyReverted")["chain"] == ["branch_manager", "regional_manager"]
    case = case_of(approval_uc, rid)
    assert case.fast_track is False
    assert [(s.role, s.status) for s in case.steps] == [
        ("regional_manager", "void"),
        ("branch_manager", "active"),
        ("regional_manager", "waiting"),
    ]
    decide(approval_uc, BOB, rid)
    decide(approval_uc, RITA, rid)  # reverting the urgency was not a decision on the money
    assert approval_uc.one("RequisitionApproved")["approver_ids"] == [BOB.user_id, RITA.user_id]


# -- timers, the policy, closing ------------------------------------------------------


def test_an_overdue_step_escalates_to_an_admin_once(approval_uc: Harness) -> None:
    rid = submitted(approval_uc, amount=kes(4_000))
    assert refused(approval_uc, ADMIN, rid).code == "not-the-expected-approver"
    now = datetime.now(UTC)
    overdue = maintenance(catalog.ESCALATE_OVERDUE, now + timedelta(hours=23))
    assert approval_uc.run(service.escalate_overdue, overdue) == {"escalated": 0}

    overdue = maintenance(catalog.ESCALATE_OVERDUE, now + timedelta(hours=25))
    assert approval_uc.run(service.escalate_overdue, overdue) == {"escalated": 1}
    escalated = approval_uc.one("ApprovalEscalated")
    assert escalated["escalated_to"] == "admin"
    assert "SLA of 24h exceeded" in escalated["reason"]
    assert approval_uc.snapshot("ApprovalCaseChanged", case_of(approval_uc, rid).id)["inbox"]["admin_may_act"] is True
    alert = approval_uc.one("AlertRaised")
    assert (alert["kind"], alert["subject"], alert["branch_id"]) == (
        "approval_overdue",
        f"requisition:{rid}",
        NBO_CBD.id,
    )
    assert approval_uc.run(service.escalate_overdue, overdue) == {"escalated": 0}

    decide(approval_uc, ADMIN, rid, comment="approved after the SLA ran out")
    assert approval_uc.one("RequisitionApproved")["approver_ids"] == [ADMIN.user_id]
    assert approval_uc.one("AlertCleared")["subject"] == f"requisition:{rid}"  # decided: the alert is over


def test_the_policy_is_admin_only_versioned_and_checked(approval_uc: Harness) -> None:
    by_finance = approval_uc.refuse(service.set_policy, command(catalog.SET_POLICY, policy(sla_hours=48), FIONA))
    assert (by_finance.code, by_finance.status) == ("admin-only", 403)
    no_top = policy(tiers=[t for t in policy()["tiers"] if t["name"] != "T4"])
    broken = approval_uc.refuse(service.set_policy, command(catalog.SET_POLICY, no_top, ADMIN))
    assert (broken.code, broken.status) == ("invalid-policy", 422)

    routed_before = submitted(approval_uc)
    saved = approval_uc.run(service.set_policy, command(catalog.SET_POLICY, policy(sla_hours=48), ADMIN))
    assert (saved["status"], saved["body"]["version"]) == (201, 2)
    assert approval_uc.snapshot("DocumentChanged", "policy")["body"]["sla_hours"] == 48
    routed_after = submitted(approval_uc)
    assert case_of(approval_uc, routed_before).policy_version == 1
    later = case_of(approval_uc, routed_after)
    assert later.policy_version == 2
    assert later.steps[0].due_at - later.steps[0].activated_at == timedelta(hours=48)


@pytest.mark.parametrize(
    ("closed", "status"), [(catalog.REQUISITION_CANCELLED, "cancelled"), (catalog.REQUISITION_EXPIRED, "expired")]
)
def test_a_cancelled_or_expired_requisition_closes_its_case(
    approval_uc: Harness, closed: EventSpec, status: str
) -> None:
    rid = submitted(approval_uc)
    approval_uc.run(service.on_requisition_closed, event(closed, requisition_closed(rid)))
    case = case_of(approval_uc, rid)
    assert (case.status, current_steps(case)) == (status, [("branch_manager", "void")])
    assert refused(approval_uc, BOB, rid).code == "case-closed"


def test_a_receipt_reused_from_another_requisition_is_flagged_to_approvers(approval_uc: Harness) -> None:
    rid = submitted(approval_uc)
    attached = receipt_attached(rid, reused_in=["NBO-CBD-000007"])
    approval_uc.run(service.on_receipt_attached, event(catalog.RECEIPT_ATTACHED, attached, ALICE))
    case = case_of(approval_uc, rid)
    assert case.reused_receipts == ["NBO-CBD-000007"]
    assert approval_uc.snapshot("ApprovalCaseChanged", case.id)["inbox"]["item"]["reused_receipts"] == [
        "NBO-CBD-000007"
    ]
