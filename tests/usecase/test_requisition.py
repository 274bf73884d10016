"""Requisition use cases in process: submitting, drafts, caps, changes and resubmission,
cancelling, receipts, expiry, and the status the other services' events move it to."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from services.requisition import service
from services.requisition.models import HistoryEntry, Requisition
from shared.contracts import catalog
from shared.contracts.envelope import Actor, Envelope
from shared.messaging.runtime import RetryLater
from tests.factories import (
    ADMIN,
    ALICE,
    BOB,
    FIONA,
    NBO_CBD,
    SAM,
    approval_case_opened,
    cap,
    caps,
    changes_requested,
    command,
    edit,
    event,
    funds_reserved,
    kes,
    maintenance,
    payment_completed,
    payment_started,
    receipt,
    requisition_action,
    requisition_approved,
    submission,
)
from tests.usecase.conftest import Harness

SUBMITTED = "RequisitionSubmitted"


def submit(uc: Harness, actor: Actor = ALICE, **fields: Any) -> dict[str, Any]:
    """Alice's requisition (or ``actor``'s) for NBO-CBD, submitted; its body."""
    reply = uc.run(service.submit_requisition, command(catalog.SUBMIT_REQUISITION, submission(**fields), actor))
    assert reply["status"] == 201, reply
    return dict(reply["body"])


def status(uc: Harness, rid: Any) -> str:
    return str(uc.get(Requisition, uuid.UUID(str(rid))).status)


def history(uc: Harness, rid: Any) -> list[str]:
    entries = uc.scalars(select(HistoryEntry).where(HistoryEntry.requisition_id == rid).order_by(HistoryEntry.id))
    return [h.action for h in entries]


# The other services' events, in the order the saga sends them.
def routed(uc: Harness, rid: str, **routing: Any) -> None:
    uc.run(service.on_approval_case_opened, event(catalog.APPROVAL_CASE_OPENED, approval_case_opened(rid, **routing)))


def sent_back(uc: Harness, rid: str, deadline: datetime) -> None:
    uc.run(service.on_changes_requested, event(catalog.CHANGES_REQUESTED, changes_requested(rid, deadline), BOB))


def approved(uc: Harness, rid: str) -> None:
    uc.run(service.on_approved, event(catalog.REQUISITION_APPROVED, requisition_approved(rid), BOB))


def reserved(uc: Harness, rid: str) -> None:
    uc.run(service.on_funds_reserved, event(catalog.FUNDS_RESERVED, funds_reserved(rid)))


def payment_under_way(uc: Harness, rid: str) -> None:
    uc.run(service.on_payment_started, event(catalog.PAYMENT_STARTED, payment_started(rid)))


def cancel(rid: str, actor: Actor, comment: str = "") -> Envelope:
    return command(catalog.CANCEL_REQUISITION, requisition_action(rid, comment), actor)


def set_caps(uc: Harness, *rules: dict[str, Any]) -> None:
    uc.run(service.set_caps, command(catalog.SET_CAPS, caps(*rules), ADMIN))


# -- submitting -----------------------------------------------------------------------


def test_a_member_submits_and_the_approval_service_is_told(requisition_uc: Harness) -> None:
    body = submit(requisition_uc, amount=kes(5_000))
    assert (body["status"], body["voucher_no"], body["revision"]) == ("submitted", "NBO-CBD-000001", 1)
    assert requisition_uc.emitted_types() == [SUBMITTED]
    submitted = requisition_uc.one(SUBMITTED)
    assert submitted | {"requisition_id": "?"} == {
        "requisition_id": "?",
        "voucher_no": "NBO-CBD-000001",
        "branch_id": NBO_CBD.id,
        "region_id": NBO_CBD.region_id,
        "origin": "branch",
        "requester_id": ALICE.user_id,
        "requester_name": "alice",
        "amount": kes(5_000),
        "category": "fuel",
        "urgent": False,
        "urgency_reason": "",
        "payee": {"name": "Shell Moi Avenue", "method": "cash", "account_ref": ""},
        "reused_receipts": [],
        "revision": 1,
    }
    assert submitted["requisition_id"] == body["id"]
    assert requisition_uc.snapshot("RequisitionChanged", body["id"])["status"] == "submitted"
    assert history(requisition_uc, uuid.UUID(body["id"])) == ["created", "submitted"]


def test_only_a_member_of_the_branch_requests_money_for_it(requisition_uc: Harness) -> None:
    refused = requisition_uc.refuse(
        service.submit_requisition, command(catalog.SUBMIT_REQUISITION, submission(NBO_CBD), SAM)
    )
    assert (refused.code, refused.status) == ("not-a-branch-member", 403)
    assert requisition_uc.emitted(snapshots=True) == []
    assert requisition_uc.scalar(select(func.count()).select_from(Requisition)) == 0


def test_a_draft_is_saved_without_a_number_and_tells_nobody(requisition_uc: Harness) -> None:
    draft = submit(requisition_uc, draft=True)
    assert (draft["status"], draft["voucher_no"]) == ("draft", None)
    assert requisition_uc.emitted_types() == []
    assert requisition_uc.snapshot("RequisitionChanged", draft["id"])["status"] == "draft"

    reply = requisition_uc.run(
        service.submit_draft, command(catalog.SUBMIT_DRAFT, requisition_action(draft["id"]), ALICE)
    )
    assert (reply["body"]["status"], reply["body"]["voucher_no"]) == ("submitted", "NBO-CBD-000001")
    assert requisition_uc.one(SUBMITTED)["requisition_id"] == draft["id"]
    assert history(requisition_uc, uuid.UUID(draft["id"])) == ["created", "submitted"]


def test_voucher_numbers_follow_each_other_per_branch_and_drafts_take_none(requisition_uc: Harness) -> None:
    first = submit(requisition_uc)
    submit(requisition_uc, draft=True)
    second = submit(requisition_uc)
    assert [first["voucher_no"], second["voucher_no"]] == ["NBO-CBD-000001", "NBO-CBD-000002"]


# -- caps -----------------------------------------------------------------------------


def test_the_branch_monthly_cap_refuses_what_would_exceed_it(requisition_uc: Harness) -> None:
    set_caps(requisition_uc, cap("branch_monthly", kes(2_000), branch=NBO_CBD))
    submit(requisition_uc, amount=kes(1_500))
    over = command(catalog.SUBMIT_REQUISITION, submission(amount=kes(600)), ALICE)
    refused = requisition_uc.refuse(service.submit_requisition, over)
    assert (refused.code, refused.status) == ("cap-exceeded", 422)
    assert "monthly cap of 2,000.00 KES" in refused.detail
    assert "500.00 KES left this month" in refused.detail
    assert requisition_uc.emitted(snapshots=True) == []
    # The refused submission used no voucher number: the next one follows without a gap.
    assert submit(requisition_uc, amount=kes(500))["voucher_no"] == "NBO-CBD-000002"


def test_a_category_cap_refuses_a_requisition_over_it_and_a_refused_draft_stays_a_draft(
    requisition_uc: Harness,
) -> None:
    set_caps(requisition_uc, cap("category_per_requisition", kes(2_000), category="cleaning"))
    over = command(catalog.SUBMIT_REQUISITION, submission(category="cleaning", amount=kes(2_001)), ALICE)
    assert requisition_uc.refuse(service.submit_requisition, over).code == "cap-exceeded"
    assert submit(requisition_uc, category="cleaning", amount=kes(2_000))["status"] == "submitted"

    draft = submit(requisition_uc, category="cleaning", amount=kes(5_000), draft=True)
    refused = requisition_uc.refuse(
        service.submit_draft, command(catalog.SUBMIT_DRAFT, requisition_action(draft["id"]), ALICE)
    )
    assert refused.code == "cap-exceeded"
    assert "cleaning are capped at 2,000.00 KES" in refused.detail
    assert status(requisition_uc, draft["id"]) == "draft"


def test_only_an_admin_sets_caps(requisition_uc: Harness) -> None:
    payload = caps(cap("branch_monthly", kes(1_000)))
    refused = requisition_uc.refuse(service.set_caps, command(catalog.SET_CAPS, payload, FIONA))
    assert (refused.code, refused.status) == ("admin-only", 403)


# -- changes requested: edit, resubmit, or expire ---------------------------------------


def test_a_requisition_waiting_for_approval_cannot_be_edited(requisition_uc: Harness) -> None:
    rid = submit(requisition_uc)["id"]
    routed(requisition_uc, rid)
    refused = requisition_uc.refuse(service.update_requisition, command(catalog.UPDATE_REQUISITION, edit(rid), ALICE))
    assert (refused.code, refused.status) == ("not-editable", 409)


def test_the_requester_edits_and_resubmits_after_changes_were_requested(requisition_uc: Harness) -> None:
    rid = submit(requisition_uc, amount=kes(3_000))["id"]
    routed(requisition_uc, rid)
    sent_back(requisition_uc, rid, datetime.now(UTC) + timedelta(hours=48))
    assert status(requisition_uc, rid) == "changes_requested"

    changed = edit(rid, amount=kes(2_500), purpose="Fuel only")
    edited = requisition_uc.run(service.update_requisition, command(catalog.UPDATE_REQUISITION, changed, ALICE))
    assert (edited["body"]["amount"], edited["body"]["purpose"]) == (kes(2_500), "Fuel only")
    assert requisition_uc.emitted_types() == []  # an edit is the requester's business until resubmitted

    resubmitted = requisition_uc.run(
        service.submit_draft, command(catalog.SUBMIT_DRAFT, requisition_action(rid), ALICE)
    )
    body = resubmitted["body"]
    assert (body["status"], body["voucher_no"], body["revision"]) == ("submitted", "NBO-CBD-000001", 2)
    assert body["changes_deadline"] is None
    again = requisition_uc.one(SUBMITTED)
    assert (again["revision"], again["amount"]) == (2, kes(2_500))
    assert history(requisition_uc, uuid.UUID(rid))[-3:] == ["changes-requested", "edited", "resubmitted"]


def test_only_the_requester_edits_and_others_branches_see_nothing(requisition_uc: Harness) -> None:
    rid = submit(requisition_uc)["id"]
    routed(requisition_uc, rid)
    sent_back(requisition_uc, rid, datetime.now(UTC) + timedelta(hours=48))
    by_manager = requisition_uc.refuse(service.update_requisition, command(catalog.UPDATE_REQUISITION, edit(rid), BOB))
    assert (by_manager.code, by_manager.status) == ("requester-only", 403)
    by_stranger = requisition_uc.refuse(service.update_requisition, command(catalog.UPDATE_REQUISITION, edit(rid), SAM))
    assert (by_stranger.code, by_stranger.status) == ("not-found", 404)


def test_a_resubmission_after_the_deadline_for_changes_is_refused(requisition_uc: Harness) -> None:
    rid = submit(requisition_uc)["id"]
    routed(requisition_uc, rid)
    sent_back(requisition_uc, rid, datetime.now(UTC) - timedelta(minutes=1))
    late = requisition_uc.refuse(service.submit_draft, command(catalog.SUBMIT_DRAFT, requisition_action(rid), ALICE))
    assert (late.code, late.status) == ("changes-deadline-passed", 409)
    assert status(requisition_uc, rid) == "changes_requested"


def test_changes_not_made_by_the_deadline_expire(requisition_uc: Harness) -> None:
    rid = submit(requisition_uc)["id"]
    routed(requisition_uc, rid)
    deadline = datetime.now(UTC) + timedelta(hours=1)
    sent_back(requisition_uc, rid, deadline)

    early = requisition_uc.run(service.expire_requisitions, maintenance(catalog.EXPIRE_REQUISITIONS, deadline))
    assert early == {"expired": 0}
    done = requisition_uc.run(
        service.expire_requisitions, maintenance(catalog.EXPIRE_REQUISITIONS, deadline + timedelta(minutes=1))
    )
    assert done == {"expired": 1}
    assert requisition_uc.one("RequisitionExpired") == {
        "requisition_id": rid,
        "branch_id": NBO_CBD.id,
        "actor_id": "system",
        "reason": "deadline passed",
    }
    assert status(requisition_uc, rid) == "expired"


# -- cancelling -----------------------------------------------------------------------


def test_the_requester_withdraws_their_own_requisition_before_a_decision(requisition_uc: Harness) -> None:
    rid = submit(requisition_uc)["id"]
    routed(requisition_uc, rid)
    reply = requisition_uc.run(service.cancel_requisition, cancel(rid, ALICE, "Bought it myself"))
    assert reply["body"]["status"] == "cancelled"
    assert requisition_uc.one("RequisitionCancelled") == {
        "requisition_id": rid,
        "branch_id": NBO_CBD.id,
        "actor_id": ALICE.user_id,
        "reason": "Bought it myself",
    }


def test_someone_elses_requisition_is_not_theirs_to_cancel(requisition_uc: Harness) -> None:
    rid = submit(requisition_uc)["id"]
    refused = requisition_uc.refuse(service.cancel_requisition, cancel(rid, BOB))
    assert (refused.code, refused.status) == ("cannot-cancel", 403)
    assert status(requisition_uc, rid) == "submitted"


def test_after_approval_only_finance_cancels_and_the_ledger_is_told(requisition_uc: Harness) -> None:
    rid = submit(requisition_uc)["id"]
    for step in (routed, approved, reserved):
        step(requisition_uc, rid)
    by_requester = requisition_uc.refuse(service.cancel_requisition, cancel(rid, ALICE))
    assert (by_requester.code, by_requester.status) == ("invalid-transition", 409)

    requisition_uc.run(service.cancel_requisition, cancel(rid, FIONA, "Duplicate of V-17"))
    assert requisition_uc.one("RequisitionCancelled")["actor_id"] == FIONA.user_id
    assert status(requisition_uc, rid) == "cancelled"


def test_nobody_cancels_once_the_payment_started(requisition_uc: Harness) -> None:
    rid = submit(requisition_uc)["id"]
    for step in (routed, approved, reserved, payment_under_way):
        step(requisition_uc, rid)
    refused = requisition_uc.refuse(service.cancel_requisition, cancel(rid, FIONA))
    assert (refused.code, refused.extra["current"]) == ("invalid-transition", "payment_processing")
    assert requisition_uc.emitted(snapshots=True) == []


# -- receipts -------------------------------------------------------------------------


def test_a_receipt_already_used_on_another_requisition_is_flagged(requisition_uc: Harness) -> None:
    first, second = submit(requisition_uc), submit(requisition_uc)
    one = requisition_uc.run(service.attach_receipt, command(catalog.ATTACH_RECEIPT, receipt(first["id"]), ALICE))
    assert (one["status"], one["body"]["reused"]) == (201, False)
    assert requisition_uc.one("ReceiptAttached")["reused_in"] == []

    two = requisition_uc.run(service.attach_receipt, command(catalog.ATTACH_RECEIPT, receipt(second["id"]), ALICE))
    assert two["body"]["reused_in"] == ["NBO-CBD-000001"]
    assert requisition_uc.one("ReceiptAttached")["reused_in"] == ["NBO-CBD-000001"]
    # The first requisition's receipt is flagged too: its snapshot is published again.
    [flagged] = requisition_uc.snapshot("RequisitionChanged", first["id"])["body"]["receipts"]
    assert flagged["reused_in"] == ["NBO-CBD-000002"]


def test_a_file_is_attached_once_and_a_drafts_receipt_tells_nobody(requisition_uc: Harness) -> None:
    draft = submit(requisition_uc, draft=True)["id"]
    attach = command(catalog.ATTACH_RECEIPT, receipt(draft), ALICE)
    requisition_uc.run(service.attach_receipt, attach)
    assert requisition_uc.emitted_types() == []
    again = requisition_uc.refuse(service.attach_receipt, command(catalog.ATTACH_RECEIPT, receipt(draft), ALICE))
    assert (again.code, again.status) == ("receipt-already-attached", 409)


def test_receipts_close_once_the_requisition_is_approved(requisition_uc: Harness) -> None:
    rid = submit(requisition_uc)["id"]
    routed(requisition_uc, rid)
    approved(requisition_uc, rid)
    closed = requisition_uc.refuse(service.attach_receipt, command(catalog.ATTACH_RECEIPT, receipt(rid), ALICE))
    assert (closed.code, closed.status) == ("receipts-closed", 409)


# -- the other services' events -------------------------------------------------------


def test_the_sagas_events_move_the_requisition_to_paid(requisition_uc: Harness) -> None:
    rid = submit(requisition_uc)["id"]
    routed(requisition_uc, rid, tier="T2", chain=["branch_manager", "regional_manager"])
    row = requisition_uc.get(Requisition, uuid.UUID(rid))
    assert (row.status, row.tier) == ("pending_approval", "T2")
    for step, reached in ((approved, "approved"), (reserved, "reserved"), (payment_under_way, "payment_processing")):
        step(requisition_uc, rid)
        assert status(requisition_uc, rid) == reached
    requisition_uc.run(service.on_payment_completed, event(catalog.PAYMENT_COMPLETED, payment_completed(rid)))
    assert status(requisition_uc, rid) == "paid"
    assert history(requisition_uc, uuid.UUID(rid))[-4:] == ["approved", "funds-reserved", "payment-started", "paid"]


def test_an_event_that_overtook_the_one_before_it_waits(requisition_uc: Harness) -> None:
    rid = submit(requisition_uc)["id"]  # not routed yet: an approval cannot have happened
    with pytest.raises(RetryLater):
        approved(requisition_uc, rid)
    assert status(requisition_uc, rid) == "submitted"
