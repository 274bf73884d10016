"""The requisition lifecycle and approval routing, over HTTP, through real worker processes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.gateway import identity
from shared.config import Settings
from shared.contracts import catalog
from shared.contracts.envelope import SYSTEM_ACTOR, Envelope
from shared.messaging.app import make_celery
from tests.support import Api, kes, requisition_body, scalar, wait_for

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def submit(api: Api, token: str, **changes: Any) -> str:
    response = api.post("/api/v1/requisitions", token, json=requisition_body(**changes))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def show(api: Api, token: str, rid: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/requisitions/{rid}", token)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_status(api: Api, token: str, rid: str, status: str, timeout: float = 15) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        body = show(api, token, rid)
        return body if body["status"] == status else None

    return dict(wait_for(reached, timeout, 0.05, f"{rid} to become {status}"))


def wait_approved(api: Api, token: str, rid: str) -> dict[str, Any]:
    """Approved, or already moved on by the ledger (reserved, or awaiting funds)."""

    def reached() -> dict[str, Any] | None:
        body = show(api, token, rid)
        return body if body["status"] in ("approved", "reserved", "awaiting_funds") else None

    return dict(wait_for(reached, 15, 0.05, f"{rid} to be approved"))


def decide(api: Api, token: str, rid: str, action: str, **body: Any) -> Any:
    return api.post(f"/api/v1/requisitions/{rid}/{action}", token, json=body)


def approve(api: Api, token: str, rid: str, comment: str = "ok") -> None:
    response = decide(api, token, rid, "approve", comment=comment)
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def people(dbs: Any, stack: Any, tokens: dict[str, str]) -> dict[str, str]:
    """Extra users: a staff member of a branch with no manager, and one person with two roles."""
    made: dict[str, str] = dict(tokens)
    with dbs["gateway"].uow() as uow:
        wes = identity.create_user(uow.session, "wes", "Wes (staff, Westlands)", ["staff"], ["NBO-WST"])
        dual = identity.create_user(
            uow.session,
            "dual",
            "Dee (branch and regional manager)",
            ["branch_manager", "regional_manager"],
            ["NBO-CBD"],
        )
        made["wes"] = identity.issue_token(uow.session, wes)
        made["dual"] = identity.issue_token(uow.session, dual)
        uow.commit()
    users = scalar(dbs["gateway"], "SELECT count(*) FROM users")
    wait_for(lambda: scalar(dbs["approval"], "SELECT count(*) FROM approvers") >= users, 15, what="the directory")
    return made


def chain_of(body: dict[str, Any]) -> list[str]:
    return [s["role"] for s in body["approval"]["steps"] if s["status"] != "void"]


@pytest.mark.parametrize(
    ("major", "tier", "approvers"),
    [
        (5_000, "T1", ["bob"]),
        (30_000, "T2", ["bob", "rita"]),
        (100_000, "T3", ["rita", "fiona"]),
        (300_000, "T4", ["fiona", "carol"]),
    ],
)
def test_each_tier_walks_its_chain_to_approval(
    api: Api, people: dict[str, str], major: int, tier: str, approvers: list[str]
) -> None:
    rid = submit(api, people["alice"], amount=kes(major))
    routed = wait_status(api, people["alice"], rid, "pending_approval")
    assert routed["approval"]["tier"] == tier
    for i, name in enumerate(approvers):
        assert any(
            item["requisition_id"] == rid for item in api.get("/api/v1/approvals/inbox", people[name]).json()["items"]
        )
        approve(api, people[name], rid, f"fine by {name}")
        if i + 1 < len(approvers):
            wait_for(lambda n=i + 1: show(api, people["alice"], rid)["approval"]["steps"][n]["status"] == "active", 10)
    wait_approved(api, people["alice"], rid)

    def recorded() -> dict[str, Any] | None:
        # Each step's completion reaches the history as its own event, maybe after the approval.
        body = show(api, people["alice"], rid)
        return body if sum(h["action"].startswith("approved as") for h in body["history"]) == len(approvers) else None

    done = wait_for(recorded, 10, 0.05, "every step in the history")
    steps = done["approval"]["steps"]
    assert [s["decided_by_name"] for s in steps] == approvers
    assert done["approval"]["status"] == "approved"
    # Anyone entitled sees who approved, when, with what comment.
    approvals = [h for h in done["history"] if h["action"].startswith("approved as")]
    assert [h["actor_name"] for h in approvals] == approvers
    assert [h["comment"] for h in approvals] == [f"fine by {n}" for n in approvers]


def test_rejection_needs_a_reason_and_ends_the_requisition(api: Api, people: dict[str, str]) -> None:
    rid = submit(api, people["alice"], amount=kes(2_000))
    wait_status(api, people["alice"], rid, "pending_approval")
    missing = decide(api, people["bob"], rid, "reject")
    assert missing.status_code == 400
    assert "reason" in missing.json()["errors"]
    assert decide(api, people["bob"], rid, "reject", reason="No receipt for the last advance").status_code == 200
    rejected = wait_status(api, people["alice"], rid, "rejected")
    assert rejected["history"][-1]["comment"] == "No receipt for the last advance"
    late = decide(api, people["bob"], rid, "approve", comment="changed my mind")
    assert late.status_code == 409
    assert late.json()["type"] == "case-closed"


def test_self_approval_is_refused_and_the_step_escalates(api: Api, people: dict[str, str], dbs: Any) -> None:
    # Mary is the only branch manager of MSA-01: her own request cannot wait for her.
    rid = submit(api, people["mary"], branch="MSA-01", amount=kes(1_000))
    routed = wait_status(api, people["mary"], rid, "pending_approval")
    step = routed["approval"]["steps"][0]
    assert step["admin_may_act"] is True
    assert "no eligible branch_manager" in step["escalation_reason"]
    refused = decide(api, people["mary"], rid, "approve")
    assert refused.status_code == 403
    assert refused.json()["type"] == "self-approval"
    rule = scalar(
        dbs["approval"],
        "SELECT rule FROM decision_attempts WHERE requisition_id = :r AND outcome = 'refused'",
        r=uuid.UUID(rid),
    )
    assert rule == "self-approval"
    approve(api, people["admin"], rid, "approved on escalation")
    done = wait_approved(api, people["mary"], rid)
    assert done["approval"]["steps"][0]["acted_as"] == "admin"


def test_an_unexpected_approver_is_refused(api: Api, people: dict[str, str]) -> None:
    rid = submit(api, people["alice"], amount=kes(30_000))
    wait_status(api, people["alice"], rid, "pending_approval")
    for name in ("rita", "fiona", "carol", "admin"):  # the first step waits for the branch manager
        refused = decide(api, people[name], rid, "approve")
        assert refused.status_code == 403, name
        assert refused.json()["type"] == "not-the-expected-approver"
    hidden = decide(api, people["mary"], rid, "approve")  # another branch's manager cannot even see it
    assert hidden.status_code == 404
    staff = decide(api, people["sam"], rid, "approve")
    # No role of staff decides: refused by the permission table, before any requisition is looked up.
    assert (staff.status_code, staff.json()["type"]) == (403, "forbidden")


def test_the_same_person_cannot_appear_twice_in_a_chain(api: Api, people: dict[str, str]) -> None:
    rid = submit(api, people["alice"], amount=kes(30_000))
    wait_status(api, people["alice"], rid, "pending_approval")
    approve(api, people["dual"], rid, "as branch manager")
    wait_for(lambda: show(api, people["alice"], rid)["approval"]["steps"][1]["status"] == "active", 10)
    again = decide(api, people["dual"], rid, "approve", comment="and as regional manager")
    assert again.status_code == 403
    assert again.json()["type"] == "approver-already-in-chain"
    approve(api, people["rita"], rid)
    wait_approved(api, people["alice"], rid)


def test_urgent_request_is_fast_tracked_and_confirmed(api: Api, people: dict[str, str]) -> None:
    rid = submit(api, people["alice"], amount=kes(30_000), urgent=True, urgency_reason="Generator failed at night")
    routed = wait_status(api, people["alice"], rid, "pending_urgency_confirmation")
    assert routed["approval"]["fast_track"] is True
    assert chain_of(routed) == ["regional_manager"]  # straight to T2's final approver
    wrong = decide(api, people["rita"], rid, "approve")
    assert wrong.status_code == 409
    assert wrong.json()["type"] == "urgency-step"
    assert decide(api, people["rita"], rid, "confirm-urgency", comment="Confirmed by phone").status_code == 200
    done = wait_approved(api, people["alice"], rid)
    assert done["approval"]["steps"][0]["decision"] == "confirm_urgency"


def test_urgent_request_reverted_to_the_normal_chain(api: Api, people: dict[str, str]) -> None:
    rid = submit(api, people["alice"], amount=kes(30_000), urgent=True, urgency_reason="Roof leaking")
    wait_status(api, people["alice"], rid, "pending_urgency_confirmation")
    assert decide(api, people["rita"], rid, "revert-urgency", comment="Can wait until Monday").status_code == 200
    reverted = wait_status(api, people["alice"], rid, "pending_approval")
    assert chain_of(reverted) == ["branch_manager", "regional_manager"]
    approve(api, people["bob"], rid)
    wait_for(lambda: show(api, people["alice"], rid)["approval"]["steps"][-1]["status"] == "active", 10)
    approve(api, people["rita"], rid)  # reverting the urgency was not a decision on the money
    wait_approved(api, people["alice"], rid)


def test_t4_is_never_fast_tracked(api: Api, people: dict[str, str]) -> None:
    rid = submit(api, people["alice"], amount=kes(300_000), urgent=True, urgency_reason="Payroll gap")
    routed = wait_status(api, people["alice"], rid, "pending_approval")
    assert routed["approval"]["fast_track"] is False
    assert chain_of(routed) == ["finance", "cfo"]
    not_urgent = decide(api, people["fiona"], rid, "confirm-urgency")
    assert not_urgent.status_code == 409
    assert not_urgent.json()["type"] == "not-an-urgency-step"


def test_a_role_without_holder_escalates_to_the_next_approver_then_admin(api: Api, people: dict[str, str]) -> None:
    # Westlands has no branch manager.
    t2 = submit(api, people["wes"], branch="NBO-WST", amount=kes(30_000))
    routed = wait_status(api, people["wes"], t2, "pending_approval")
    first, second = routed["approval"]["steps"]
    assert first["status"] == "skipped"
    assert "escalated to regional_manager" in first["escalation_reason"]
    assert second["status"] == "active"
    assert any(h["action"] == "escalated to regional_manager" for h in routed["history"])
    approve(api, people["rita"], t2)
    wait_approved(api, people["wes"], t2)

    t1 = submit(api, people["wes"], branch="NBO-WST", amount=kes(3_000))
    routed = wait_status(api, people["wes"], t1, "pending_approval")
    assert routed["approval"]["steps"][0]["admin_may_act"] is True
    approve(api, people["admin"], t1)
    wait_approved(api, people["wes"], t1)


def test_overdue_steps_escalate_on_schedule(api: Api, people: dict[str, str], settings: Settings, dbs: Any) -> None:
    rid = submit(api, people["alice"], amount=kes(4_000))
    wait_status(api, people["alice"], rid, "pending_approval")
    assert decide(api, people["admin"], rid, "approve").status_code == 403  # not yet overdue

    # The beat task, with the clock injected 25 hours ahead (the SLA is 24 h).
    as_of = (datetime.now(UTC) + timedelta(hours=25)).isoformat()
    envelope = Envelope(type=catalog.ESCALATE_OVERDUE.name, payload={"as_of": as_of}, actor=SYSTEM_ACTOR)
    make_celery(settings, "test").send_task(catalog.ESCALATE_OVERDUE.name, args=[envelope.to_dict()], queue="approval")

    def escalated() -> bool:
        history = show(api, people["alice"], rid)["history"]
        return any(h["action"] == "escalated to admin" and "SLA of 24h" in h["comment"] for h in history)

    wait_for(escalated, 10, what="the SLA escalation")
    inbox = api.get("/api/v1/approvals/inbox", people["admin"]).json()["items"]
    assert any(i["requisition_id"] == rid and i["overdue"] for i in inbox)
    approve(api, people["admin"], rid, "approved after the SLA ran out")
    wait_approved(api, people["alice"], rid)


def test_caps_refuse_with_the_limit_named(api: Api, people: dict[str, str]) -> None:
    caps = {
        "caps": [
            {"kind": "category_per_requisition", "category": "cleaning", "limit": kes(2_000)},
            {"kind": "branch_monthly", "branch_id": "MLD-01", "limit": kes(1_000)},
        ]
    }
    assert api.request("PUT", "/api/v1/caps", people["alice"], json=caps).status_code == 403
    try:
        assert api.request("PUT", "/api/v1/caps", people["admin"], json=caps).status_code == 200
        over = api.post(
            "/api/v1/requisitions", people["alice"], json=requisition_body(category="cleaning", amount=kes(2_001))
        )
        assert over.status_code == 422
        assert over.json()["type"] == "cap-exceeded"
        assert "2,000.00 KES" in over.json()["detail"]
        accepted = show(api, people["alice"], submit(api, people["alice"], category="cleaning", amount=kes(2_000)))
        # A draft is not checked; its submission is, and a refused submission leaves it a draft.
        draft = api.post(
            "/api/v1/requisitions",
            people["alice"],
            json=requisition_body(category="cleaning", amount=kes(5_000), draft=True),
        )
        assert draft.status_code == 201
        assert draft.json()["voucher_no"] is None
        refused = api.post(f"/api/v1/requisitions/{draft.json()['id']}/submit", people["alice"])
        assert refused.status_code == 422
        assert show(api, people["alice"], draft.json()["id"])["status"] == "draft"
        # Refused submissions used no voucher number: the next one follows without a gap.
        after = show(api, people["alice"], submit(api, people["alice"], category="cleaning", amount=kes(1_000)))
        seq = lambda body: int(body["voucher_no"].rsplit("-", 1)[1])
        assert seq(after) == seq(accepted) + 1
    finally:
        assert api.request("PUT", "/api/v1/caps", people["admin"], json={"caps": []}).status_code == 200


def test_a_reused_receipt_is_flagged_to_approvers(api: Api, people: dict[str, str]) -> None:
    receipt = PNG + uuid.uuid4().bytes
    first = submit(api, people["alice"], amount=kes(700))
    second = submit(api, people["alice"], amount=kes(700))
    wait_status(api, people["alice"], second, "pending_approval")
    one = api.post(
        f"/api/v1/requisitions/{first}/receipts", people["alice"], files={"file": ("r.png", receipt, "image/png")}
    )
    assert one.status_code == 201, one.text
    assert one.json()["reused"] is False
    two = api.post(
        f"/api/v1/requisitions/{second}/receipts", people["alice"], files={"file": ("r.png", receipt, "image/png")}
    )
    assert two.status_code == 201
    first_voucher = show(api, people["alice"], first)["voucher_no"]
    assert two.json()["reused_in"] == [first_voucher]
    shown = show(api, people["alice"], second)
    assert shown["receipts"][0]["reused"] is True

    def flagged() -> bool:
        items = api.get("/api/v1/approvals/inbox", people["bob"]).json()["items"]
        return any(i["requisition_id"] == second and i["reused_receipts"] == [first_voucher] for i in items)

    wait_for(flagged, 10, what="the reuse flag in the approver's inbox")


@pytest.mark.parametrize(
    ("content", "name", "problem"),
    [
        (b"just text", "r.txt", "invalid-receipt"),
        (b"", "r.pdf", "invalid-receipt"),
        (b"MZ\x90\x00", "r.pdf", "invalid-receipt"),
    ],
)
def test_receipts_are_checked_by_content(
    api: Api, people: dict[str, str], content: bytes, name: str, problem: str
) -> None:
    rid = submit(api, people["alice"], amount=kes(100))
    response = api.post(
        f"/api/v1/requisitions/{rid}/receipts", people["alice"], files={"file": (name, content, "application/pdf")}
    )
    assert response.status_code == 400
    assert response.json()["type"] == problem


def test_oversize_receipt_is_refused(api: Api, people: dict[str, str]) -> None:
    rid = submit(api, people["alice"], amount=kes(100))
    big = b"%PDF-" + b"0" * (6 * 1024 * 1024)
    response = api.post(
        f"/api/v1/requisitions/{rid}/receipts", people["alice"], files={"file": ("big.pdf", big, "application/pdf")}
    )
    assert response.status_code == 413


def edit_body(**changes: Any) -> dict[str, Any]:
    body = requisition_body(**changes)
    del body["branch"]
    return body


def test_changes_requested_edited_and_resubmitted(api: Api, people: dict[str, str]) -> None:
    rid = submit(api, people["alice"], amount=kes(3_000))
    wait_status(api, people["alice"], rid, "pending_approval")
    assert api.request("PATCH", f"/api/v1/requisitions/{rid}", people["alice"], json=edit_body()).status_code == 409
    assert (
        decide(
            api, people["bob"], rid, "request-changes", comment="Split fuel from repairs", deadline_hours=48
        ).status_code
        == 200
    )
    sent_back = wait_status(api, people["alice"], rid, "changes_requested")
    assert sent_back["changes_deadline"] is not None
    edited = api.request(
        "PATCH",
        f"/api/v1/requisitions/{rid}",
        people["alice"],
        json=edit_body(amount=kes(2_500), purpose="Fuel only"),
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["amount"] == kes(2_500)
    assert api.request("PATCH", f"/api/v1/requisitions/{rid}", people["sam"], json=edit_body()).status_code == 404
    resubmitted = api.post(f"/api/v1/requisitions/{rid}/submit", people["alice"])
    assert resubmitted.status_code == 200
    assert resubmitted.json()["voucher_no"] == sent_back["voucher_no"]  # the number stays
    routed = wait_status(api, people["alice"], rid, "pending_approval")
    assert routed["approval"]["revision"] == 2
    approve(api, people["bob"], rid)
    wait_approved(api, people["alice"], rid)


def test_changes_not_made_by_the_deadline_expire(api: Api, people: dict[str, str], settings: Settings) -> None:
    rid = submit(api, people["alice"], amount=kes(1_500))
    wait_status(api, people["alice"], rid, "pending_approval")
    decide(api, people["bob"], rid, "request-changes", comment="Attach the quote", deadline_hours=1)
    wait_status(api, people["alice"], rid, "changes_requested")
    as_of = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    envelope = Envelope(type=catalog.EXPIRE_REQUISITIONS.name, payload={"as_of": as_of}, actor=SYSTEM_ACTOR)
    make_celery(settings, "test").send_task(
        catalog.EXPIRE_REQUISITIONS.name, args=[envelope.to_dict()], queue="requisition"
    )
    expired = wait_status(api, people["alice"], rid, "expired")
    wait_for(lambda: show(api, people["alice"], rid)["approval"]["status"] == "expired", 10)
    assert api.post(f"/api/v1/requisitions/{rid}/submit", people["alice"]).status_code == 409
    assert expired["history"][-1]["action"] == "expired"


def test_requester_cancels_before_a_decision_not_after(api: Api, people: dict[str, str]) -> None:
    rid = submit(api, people["alice"], amount=kes(800))
    wait_status(api, people["alice"], rid, "pending_approval")
    assert api.post(f"/api/v1/requisitions/{rid}/cancel", people["bob"], json={"comment": "no"}).status_code == 403
    cancelled = api.post(f"/api/v1/requisitions/{rid}/cancel", people["alice"], json={"comment": "Bought it myself"})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    wait_for(lambda: show(api, people["alice"], rid)["approval"]["status"] == "cancelled", 10)
    assert decide(api, people["bob"], rid, "approve").status_code == 409

    decided = submit(api, people["alice"], amount=kes(800))
    wait_status(api, people["alice"], decided, "pending_approval")
    decide(api, people["bob"], decided, "reject", reason="Duplicate")
    wait_status(api, people["alice"], decided, "rejected")
    late = api.post(f"/api/v1/requisitions/{decided}/cancel", people["alice"], json={})
    assert late.status_code == 409
    assert late.json()["type"] == "invalid-transition"


def test_lists_mine_and_my_branch(api: Api, people: dict[str, str]) -> None:
    rid = submit(api, people["alice"], amount=kes(600))
    mine = api.get("/api/v1/requisitions", people["alice"]).json()["items"]
    assert rid in [r["id"] for r in mine]
    assert all(r["requester_name"] == "alice" for r in mine)
    branch = api.get("/api/v1/requisitions?scope=branch", people["bob"]).json()["items"]
    assert rid in [r["id"] for r in branch]
    assert rid not in [r["id"] for r in api.get("/api/v1/requisitions?scope=all", people["sam"]).json()["items"]]
    assert rid in [
        r["id"] for r in api.get("/api/v1/requisitions?scope=all&branch=NBO-CBD", people["aud"]).json()["items"]
    ]
    assert api.get("/api/v1/requisitions?scope=everything", people["alice"]).status_code == 400


def test_policy_is_versioned_and_admin_only(api: Api, people: dict[str, str]) -> None:
    policy = api.get("/api/v1/approval-policy", people["admin"]).json()
    assert api.get("/api/v1/approval-policy", people["alice"]).status_code == 403
    body = {k: policy[k] for k in ("tiers", "limits", "sla_hours", "urgent_sla_hours")}
    assert api.request("PUT", "/api/v1/approval-policy", people["fiona"], json=body).status_code == 403
    broken = {**body, "tiers": [t for t in body["tiers"] if t["name"] != "T4"]}
    bad = api.request("PUT", "/api/v1/approval-policy", people["admin"], json=broken)
    assert bad.status_code == 422
    assert bad.json()["type"] == "invalid-policy"

    pending = submit(api, people["alice"], amount=kes(700))
    routed = wait_status(api, people["alice"], pending, "pending_approval")
    saved = api.request("PUT", "/api/v1/approval-policy", people["admin"], json={**body, "sla_hours": 48})
    assert saved.status_code == 201, saved.text
    assert saved.json()["version"] > policy["version"]
    try:
        later = submit(api, people["alice"], amount=kes(700))
        assert (
            wait_status(api, people["alice"], later, "pending_approval")["approval"]["policy_version"]
            == saved.json()["version"]
        )
        assert show(api, people["alice"], pending)["approval"]["policy_version"] == routed["approval"]["policy_version"]
    finally:
        api.request("PUT", "/api/v1/approval-policy", people["admin"], json=body)
