"""Ledger use cases in process: funding a float, reserving for approved requisitions (or queueing
them until funds arrive), replenishments, posting and releasing holds, balanced books, and the
floats' levels the gateway's directory announces."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from services.ledger import cash, days, domain, service
from services.ledger.models import Account, AwaitingFunds, BranchLevels, FloatDay, Replenishment, Transfer
from services.ledger.schemas import float_body
from shared.contracts import catalog
from shared.contracts.envelope import Actor
from shared.messaging.errors import DomainError
from shared.messaging.runtime import PermanentMessageError
from tests.factories import (
    ADMIN,
    BOB,
    CAROL,
    FIONA,
    MARY,
    MSA_01,
    NBO_CBD,
    TOM,
    Branch,
    an_actor,
    branch_directory_updated,
    command,
    event,
    float_funding,
    kes,
    maintenance,
    money,
    payment_completed,
    payment_failed,
    replenishment_decision,
    replenishment_request,
    requisition_approved,
    requisition_closed,
)
from tests.usecase.conftest import Harness

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def fund(uc: Harness, major: int, branch: Branch = NBO_CBD, actor: Actor = TOM) -> dict[str, Any]:
    reply = uc.run(service.open_float, command(catalog.OPEN_FLOAT, float_funding(branch, kes(major)), actor))
    return dict(reply)


def approved(uc: Harness, major: int, minutes: int = 0, rid: str | None = None, branch: Branch = NBO_CBD) -> str:
    """``RequisitionApproved`` for KES ``major``, approved ``minutes`` after START; its id."""
    rid = rid or str(uuid.uuid4())
    payload = requisition_approved(
        rid, branch=branch, amount=kes(major), approved_at=START + timedelta(minutes=minutes)
    )
    uc.run(service.on_requisition_approved, event(catalog.REQUISITION_APPROVED, payload, BOB))
    return rid


def float_of(uc: Harness, branch: Branch = NBO_CBD) -> dict[str, int]:
    """The branch float's balance, held and available, in major units."""
    body = float_body(uc.scalar(select(Account).where(Account.kind == "float", Account.branch_id == branch.id)))
    return {part: body[part]["minor_units"] // 100 for part in ("balance", "held", "available")}


def transfers(uc: Harness, rid: str) -> list[str]:
    rows = uc.scalars(select(Transfer).where(Transfer.requisition_id == uuid.UUID(rid)).order_by(Transfer.created_at))
    return [t.kind for t in rows]


def waiting(uc: Harness) -> list[uuid.UUID]:
    return uc.scalars(select(AwaitingFunds.requisition_id).order_by(AwaitingFunds.approved_at))


def hold(rid: str) -> str:
    return str(domain.transfer_id("hold", rid))


# -- floats ---------------------------------------------------------------------------


def test_treasury_funds_a_branch_float_from_the_bank(ledger_uc: Harness) -> None:
    reply = fund(ledger_uc, 100_000)
    assert reply["status"] == 201
    assert (reply["body"]["account"], reply["body"]["balance"]) == ("float:NBO-CBD:KES", kes(100_000))
    assert ledger_uc.emitted_types() == []
    codes = {a.code: a for a in ledger_uc.scalars(select(Account))}
    assert set(codes) == {"float:NBO-CBD:KES", "bank:KES", "over_short:NBO-CBD:KES"}
    assert (codes["bank:KES"].credits_posted, codes["float:NBO-CBD:KES"].debits_posted) == (10_000_000, 10_000_000)
    assert ledger_uc.snapshot("AccountChanged", codes["float:NBO-CBD:KES"].id)["float"]["available"] == kes(100_000)
    assert ledger_uc.snapshot("DocumentChanged", "ledger_totals")["body"]["balanced"] is True


def test_a_float_opens_once_and_only_treasury_or_an_admin_funds_it(ledger_uc: Harness) -> None:
    fund(ledger_uc, 1_000)
    again = ledger_uc.refuse(service.open_float, command(catalog.OPEN_FLOAT, float_funding(NBO_CBD), ADMIN))
    assert (again.code, again.status) == ("float-exists", 409)
    by_finance = ledger_uc.refuse(service.open_float, command(catalog.OPEN_FLOAT, float_funding(MSA_01), FIONA))
    assert (by_finance.code, by_finance.status) == ("role-required", 403)
    assert fund(ledger_uc, 500, MSA_01, ADMIN)["status"] == 201


# -- reserving ------------------------------------------------------------------------


def test_an_approved_requisition_is_reserved_on_its_branch_float_once(ledger_uc: Harness) -> None:
    fund(ledger_uc, 5_000)
    rid = approved(ledger_uc, 1_200)
    assert ledger_uc.emitted_types() == ["FundsReserved"]
    assert ledger_uc.one("FundsReserved") == {
        "requisition_id": rid,
        "branch_id": NBO_CBD.id,
        "transfer_id": hold(rid),
        "amount": kes(1_200),
    }
    assert float_of(ledger_uc) == {"balance": 5_000, "held": 1_200, "available": 3_800}
    approved(ledger_uc, 1_200, rid=rid)  # redelivered
    assert ledger_uc.emitted(snapshots=True) == []
    assert transfers(ledger_uc, rid) == ["hold"]


def test_a_requisition_the_float_cannot_cover_awaits_funds(ledger_uc: Harness) -> None:
    fund(ledger_uc, 1_000)
    rid = approved(ledger_uc, 1_500)
    assert ledger_uc.emitted_types() == ["FundsAwaited", "AlertRaised"]
    awaited = ledger_uc.one("FundsAwaited")
    assert (awaited["requisition_id"], awaited["amount"], awaited["available_minor"]) == (rid, kes(1_500), 100_000)
    alert = ledger_uc.one("AlertRaised")
    assert (alert["kind"], alert["severity"], alert["source"]) == ("insufficient_funds", "warning", "ledger")
    assert transfers(ledger_uc, rid) == []
    assert waiting(ledger_uc) == [uuid.UUID(rid)]

    no_float = approved(ledger_uc, 100, branch=MSA_01)
    assert ledger_uc.one("FundsAwaited")["available_minor"] == 0
    assert uuid.UUID(no_float) in waiting(ledger_uc)


def replenish(uc: Harness, major: int) -> dict[str, Any]:
    """Treasury asks for KES ``major`` more on NBO-CBD's float, finance approves; the decision's reply."""
    request = command(catalog.REQUEST_REPLENISHMENT, replenishment_request(amount=kes(major)), TOM)
    asked = uc.run(service.request_replenishment, request)
    decision = command(catalog.DECIDE_REPLENISHMENT, replenishment_decision(asked["body"]["id"]), FIONA)
    return dict(uc.run(service.decide_replenishment, decision))


def test_a_replenishment_serves_the_waiting_strictly_in_approval_order(ledger_uc: Harness) -> None:
    fund(ledger_uc, 1_000)
    first = approved(ledger_uc, 800, minutes=0)
    second = approved(ledger_uc, 500, minutes=1)
    third = approved(ledger_uc, 100, minutes=2)  # it would fit, but waits its turn
    assert float_of(ledger_uc)["held"] == 800
    assert waiting(ledger_uc) == [uuid.UUID(second), uuid.UUID(third)]

    assert replenish(ledger_uc, 100)["body"]["status"] == "approved"
    assert ledger_uc.emitted("FundsReserved") == []  # 300 available: the second does not fit, so nobody is served
    assert waiting(ledger_uc) == [uuid.UUID(second), uuid.UUID(third)]

    replenish(ledger_uc, 300)
    assert [e.payload["requisition_id"] for e in ledger_uc.emitted("FundsReserved")] == [second, third]
    assert float_of(ledger_uc) == {"balance": 1_400, "held": 1_400, "available": 0}
    assert waiting(ledger_uc) == []
    assert transfers(ledger_uc, first) == ["hold"]


def test_replenishments_are_asked_by_treasury_and_decided_by_someone_else_once(ledger_uc: Harness) -> None:
    by_finance = ledger_uc.refuse(
        service.request_replenishment, command(catalog.REQUEST_REPLENISHMENT, replenishment_request(), FIONA)
    )
    assert (by_finance.code, by_finance.status) == ("role-required", 403)
    no_float = ledger_uc.refuse(
        service.request_replenishment, command(catalog.REQUEST_REPLENISHMENT, replenishment_request(), TOM)
    )
    assert (no_float.code, no_float.status) == ("no-float", 404)

    fund(ledger_uc, 1_000)
    both = an_actor("tess", "treasury", "finance")
    asked = ledger_uc.run(
        service.request_replenishment, command(catalog.REQUEST_REPLENISHMENT, replenishment_request(), both)
    )
    decide = command(catalog.DECIDE_REPLENISHMENT, replenishment_decision(asked["body"]["id"]), both)
    own = ledger_uc.refuse(service.decide_replenishment, decide)
    assert (own.code, own.status) == ("segregation-of-duties", 403)
    reject = replenishment_decision(asked["body"]["id"], approve=False, comment="not this month")
    ledger_uc.run(service.decide_replenishment, command(catalog.DECIDE_REPLENISHMENT, reject, FIONA))
    assert float_of(ledger_uc)["balance"] == 1_000  # rejected: no money moved
    twice = ledger_uc.refuse(
        service.decide_replenishment,
        command(catalog.DECIDE_REPLENISHMENT, replenishment_decision(asked["body"]["id"]), FIONA),
    )
    assert (twice.code, twice.status) == ("already-decided", 409)


# -- posting and releasing ------------------------------------------------------------


def test_a_completed_payment_posts_the_hold_once(ledger_uc: Harness) -> None:
    fund(ledger_uc, 5_000)
    rid = approved(ledger_uc, 1_200)
    paid = event(catalog.PAYMENT_COMPLETED, payment_completed(rid, kes(1_200)))
    ledger_uc.run(service.on_payment_completed, paid)
    assert float_of(ledger_uc) == {"balance": 3_800, "held": 0, "available": 3_800}
    ledger_uc.run(service.on_payment_completed, paid)  # redelivered
    assert ledger_uc.emitted_types() == []
    ledger_uc.run(service.on_requisition_cancelled, event(catalog.REQUISITION_CANCELLED, requisition_closed(rid)))
    assert transfers(ledger_uc, rid) == ["hold", "post"]  # posted stays posted
    assert float_of(ledger_uc) == {"balance": 3_800, "held": 0, "available": 3_800}


def test_a_payment_with_no_hold_to_post_raises_an_alert(ledger_uc: Harness) -> None:
    rid = str(uuid.uuid4())
    ledger_uc.run(service.on_payment_completed, event(catalog.PAYMENT_COMPLETED, payment_completed(rid)))
    alert = ledger_uc.one("AlertRaised")
    assert (alert["kind"], alert["severity"], alert["requisition_id"]) == ("payment_without_hold", "critical", rid)


def test_a_final_payment_failure_releases_the_hold_and_a_retryable_one_keeps_it(ledger_uc: Harness) -> None:
    fund(ledger_uc, 5_000)
    rid = approved(ledger_uc, 500)
    ledger_uc.run(service.on_payment_failed, event(catalog.PAYMENT_FAILED, payment_failed(rid, final=False)))
    assert float_of(ledger_uc)["held"] == 500
    ledger_uc.run(service.on_payment_failed, event(catalog.PAYMENT_FAILED, payment_failed(rid, final=True)))
    assert float_of(ledger_uc) == {"balance": 5_000, "held": 0, "available": 5_000}
    assert transfers(ledger_uc, rid) == ["hold", "void"]


def test_cancelling_releases_the_hold_and_serves_the_next_in_the_queue(ledger_uc: Harness) -> None:
    fund(ledger_uc, 1_000)
    first = approved(ledger_uc, 900, minutes=0)
    queued = approved(ledger_uc, 600, minutes=1)
    also_queued = approved(ledger_uc, 700, minutes=2)
    ledger_uc.run(service.on_requisition_cancelled, event(catalog.REQUISITION_CANCELLED, requisition_closed(first)))
    assert [e.payload["requisition_id"] for e in ledger_uc.emitted("FundsReserved")] == [queued]
    assert float_of(ledger_uc) == {"balance": 1_000, "held": 600, "available": 400}
    # A requisition still waiting for funds just leaves the queue, and its alert clears.
    ledger_uc.run(
        service.on_requisition_cancelled, event(catalog.REQUISITION_CANCELLED, requisition_closed(also_queued))
    )
    assert (ledger_uc.emitted_types(), waiting(ledger_uc)) == (["AlertCleared"], [])
    cleared = ledger_uc.one("AlertCleared")
    assert (cleared["kind"], cleared["subject"]) == ("insufficient_funds", f"requisition:{also_queued}")


# -- the books ------------------------------------------------------------------------


def test_the_books_balance_after_reserving_paying_failing_and_cancelling(ledger_uc: Harness) -> None:
    fund(ledger_uc, 10_000)
    fund(ledger_uc, 2_000, MSA_01)
    paid, failed, cancelled = (approved(ledger_uc, major) for major in (1_000, 2_000, 3_000))
    approved(ledger_uc, 1_500, branch=MSA_01)  # stays held
    ledger_uc.run(service.on_payment_completed, event(catalog.PAYMENT_COMPLETED, payment_completed(paid, kes(1_000))))
    ledger_uc.run(service.on_payment_failed, event(catalog.PAYMENT_FAILED, payment_failed(failed, final=True)))
    ledger_uc.run(service.on_requisition_cancelled, event(catalog.REQUISITION_CANCELLED, requisition_closed(cancelled)))
    assert ledger_uc.snapshot("DocumentChanged", "ledger_totals")["body"]["balanced"] is True

    checked = ledger_uc.run(service.verify_ledger, maintenance(catalog.VERIFY_LEDGER))
    assert checked == {"cache_mismatches": [], "negative_floats": []}
    with ledger_uc.session() as session:
        posted, pending = session.execute(
            select(
                func.sum(Account.debits_posted) - func.sum(Account.credits_posted),
                func.sum(Account.debits_pending) - func.sum(Account.credits_pending),
            )
        ).one()
    assert (posted, pending) == (0, 0)  # debits equal credits, posted and pending
    assert float_of(ledger_uc) == {"balance": 9_000, "held": 0, "available": 9_000}
    assert float_of(ledger_uc, MSA_01) == {"balance": 2_000, "held": 1_500, "available": 500}


def test_the_balance_check_notices_a_cached_total_that_drifted(ledger_uc: Harness) -> None:
    fund(ledger_uc, 1_000)
    with ledger_uc.session() as session:
        drifted = session.scalar(select(Account).where(Account.kind == "float"))
        drifted.debits_posted += 1
        session.commit()
    checked = ledger_uc.run(service.verify_ledger, maintenance(catalog.VERIFY_LEDGER))
    assert checked["cache_mismatches"] == ["float:NBO-CBD:KES"]


# -- a float's levels (BranchDirectoryUpdated) ----------------------------------------


def levels_update(uc: Harness, minutes: int, branch: Branch = NBO_CBD, **announced: Any) -> None:
    """The gateway's ``BranchDirectoryUpdated`` made ``minutes`` after START (``announced``:
    the payload's levels and name), handled by the ledger."""
    envelope = event(catalog.BRANCH_DIRECTORY_UPDATED, branch_directory_updated(branch, **announced), ADMIN)
    uc.run(service.on_branch_directory_updated, replace(envelope, occurred_at=at(minutes)))


def at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


def kept(uc: Harness, branch: Branch = NBO_CBD) -> tuple[Any, ...] | None:
    """The levels the ledger keeps for a branch, as (reorder level, imprest) in wire form."""
    row = uc.get(BranchLevels, branch.id)
    if row is None:
        return None
    reorder = row.reorder_level_minor and money_of(row.reorder_level_minor, row.reorder_level_currency)
    imprest = row.imprest_minor and money_of(row.imprest_minor, row.imprest_currency)
    return reorder, imprest


def money_of(minor: int, currency: str) -> dict[str, Any]:
    return {"minor_units": minor, "currency": currency}


def float_ids(uc: Harness, branch: Branch = NBO_CBD) -> set[uuid.UUID]:
    return set(uc.scalars(select(Account.id).where(Account.kind == "float", Account.branch_id == branch.id)))


def float_snapshot(uc: Harness, branch: Branch = NBO_CBD) -> dict[str, Any]:
    """The ``float`` body of the branch's (one) float, as the last use case published it."""
    [account_id] = float_ids(uc, branch)
    return dict(uc.snapshot("AccountChanged", account_id)["float"])


def levels_of(body: dict[str, Any]) -> tuple[Any, Any, bool]:
    return body["reorder_level"], body["imprest"], body["below_reorder_level"]


def test_the_ledger_keeps_a_branchs_float_levels_from_the_directory(ledger_uc: Harness) -> None:
    levels_update(ledger_uc, 0, reorder_level=kes(20_000), imprest=kes(100_000))
    row = ledger_uc.get(BranchLevels, NBO_CBD.id)
    assert (row.branch_code, row.region_id, row.head_office) == ("NBO-CBD", NBO_CBD.region_id, False)
    assert row.name == "NBO-CBD branch"
    assert (row.reorder_level_minor, row.reorder_level_currency) == (2_000_000, "KES")
    assert (row.imprest_minor, row.imprest_currency) == (10_000_000, "KES")
    assert row.updated_at.isoformat() == at(0)
    assert ledger_uc.emitted(snapshots=True) == []  # the branch has no float to re-publish yet

    levels_update(ledger_uc, 1, name="Nairobi CBD")  # the levels cleared
    assert kept(ledger_uc) == (None, None)
    assert ledger_uc.get(BranchLevels, NBO_CBD.id).name == "Nairobi CBD"


def test_an_older_update_delivered_after_a_newer_one_changes_nothing(ledger_uc: Harness) -> None:
    fund(ledger_uc, 100_000)
    levels_update(ledger_uc, 10, reorder_level=kes(30_000), imprest=kes(120_000), name="Nairobi CBD")
    assert ledger_uc.emitted_types() == []
    assert levels_of(float_snapshot(ledger_uc)) == (kes(30_000), kes(120_000), False)

    levels_update(ledger_uc, 5, reorder_level=kes(10_000), imprest=kes(50_000), name="old name")  # re-sent late
    levels_update(ledger_uc, 10, reorder_level=kes(1), imprest=kes(1))  # the same instant: taken for the kept one
    assert ledger_uc.emitted(snapshots=True) == []
    row = ledger_uc.get(BranchLevels, NBO_CBD.id)
    assert kept(ledger_uc) == (kes(30_000), kes(120_000))
    assert (row.name, row.updated_at.isoformat()) == ("Nairobi CBD", at(10))

    levels_update(ledger_uc, 11, reorder_level=kes(40_000), imprest=kes(120_000))
    assert kept(ledger_uc) == (kes(40_000), kes(120_000))
    assert levels_of(float_snapshot(ledger_uc)) == (kes(40_000), kes(120_000), False)


@pytest.mark.parametrize(
    ("reorder_level", "imprest", "rule"),
    [
        (kes(20_000), money(1_000, "USD"), "differ in currency"),
        (kes(50_000), kes(20_000), "below the reorder level"),
    ],
)
def test_levels_no_float_can_keep_are_a_permanent_error(
    ledger_uc: Harness, reorder_level: dict[str, Any], imprest: dict[str, Any], rule: str
) -> None:
    """Refused as a malformed message is: the runtime dead-letters it, with an alert, and stores nothing."""
    levels_update(ledger_uc, 0, reorder_level=kes(10_000), imprest=kes(50_000))
    with pytest.raises(PermanentMessageError, match=rule):
        levels_update(ledger_uc, 1, reorder_level=reorder_level, imprest=imprest)
    assert kept(ledger_uc) == (kes(10_000), kes(50_000))
    assert ledger_uc.get(BranchLevels, NBO_CBD.id).updated_at.isoformat() == at(0)
    with pytest.raises(PermanentMessageError, match=rule):
        levels_update(ledger_uc, 0, MSA_01, reorder_level=reorder_level, imprest=imprest)
    assert ledger_uc.get(BranchLevels, MSA_01.id) is None


def test_a_floats_snapshot_says_whether_it_is_below_its_reorder_level(ledger_uc: Harness) -> None:
    fund(ledger_uc, 100_000)
    assert levels_of(float_snapshot(ledger_uc)) == (None, None, False)  # no levels kept yet
    levels_update(ledger_uc, 0, reorder_level=kes(20_000), imprest=kes(100_000))
    assert levels_of(float_snapshot(ledger_uc)) == (kes(20_000), kes(100_000), False)

    approved(ledger_uc, 80_000)
    body = float_snapshot(ledger_uc)
    assert (body["available"], body["below_reorder_level"]) == (kes(20_000), False)  # at the level is not below it
    approved(ledger_uc, 1)
    body = float_snapshot(ledger_uc)
    assert (body["available"], body["below_reorder_level"]) == (kes(19_999), True)
    assert (body["reorder_level"], body["imprest"]) == (kes(20_000), kes(100_000))

    replenish(ledger_uc, 10_000)
    assert levels_of(float_snapshot(ledger_uc)) == (kes(20_000), kes(100_000), False)
    levels_update(ledger_uc, 1, reorder_level=kes(40_000), imprest=kes(100_000))  # a higher level: low again
    assert levels_of(float_snapshot(ledger_uc)) == (kes(40_000), kes(100_000), True)


def test_levels_in_another_currency_do_not_apply_to_a_float(ledger_uc: Harness) -> None:
    fund(ledger_uc, 1_000)
    levels_update(ledger_uc, 0, reorder_level=money(5_000, "USD"), imprest=money(20_000, "USD"))
    assert levels_of(float_snapshot(ledger_uc)) == (None, None, False)  # a KES float below a USD level means nothing


def test_a_change_of_levels_republishes_every_float_of_the_branch_and_no_other(ledger_uc: Harness) -> None:
    fund(ledger_uc, 1_000)
    ledger_uc.run(service.open_float, command(catalog.OPEN_FLOAT, float_funding(NBO_CBD, money(500, "USD")), TOM))
    fund(ledger_uc, 1_000, MSA_01)
    levels_update(ledger_uc, 0, reorder_level=kes(500), imprest=kes(1_000))
    republished = {uuid.UUID(e.payload["id"]) for e in ledger_uc.emitted("AccountChanged")}
    assert republished == float_ids(ledger_uc)
    assert len(republished) == 2  # the KES and the USD float of NBO-CBD
    bodies = {e.payload["currency"]: e.payload["float"] for e in ledger_uc.emitted("AccountChanged")}
    assert levels_of(bodies["KES"]) == (kes(500), kes(1_000), False)
    assert levels_of(bodies["USD"]) == (None, None, False)

    levels_update(ledger_uc, 1, reorder_level=kes(500), imprest=kes(1_000), name="Nairobi CBD")
    assert ledger_uc.emitted(snapshots=True) == []  # a new name changes no float's body


def test_a_float_opened_after_its_levels_arrived_answers_with_them(ledger_uc: Harness) -> None:
    levels_update(ledger_uc, 0, reorder_level=kes(20_000), imprest=kes(50_000))
    reply = fund(ledger_uc, 10_000)
    assert levels_of(reply["body"]) == (kes(20_000), kes(50_000), True)
    assert levels_of(float_snapshot(ledger_uc)) == (kes(20_000), kes(50_000), True)


# -- a float against its levels: alerts and the replenishment proposed -------------------


def alerts_of(uc: Harness) -> list[tuple[str, str, str]]:
    """(event, kind, subject) of the alerts the last use case raised or cleared."""
    return [(e.type, e.payload["kind"], e.payload["subject"]) for e in uc.emitted("AlertRaised", "AlertCleared")]


def test_a_float_falling_below_its_levels_raises_alerts_and_proposes_one_replenishment(ledger_uc: Harness) -> None:
    levels_update(ledger_uc, 0, reorder_level=kes(20_000), imprest=kes(100_000))
    fund(ledger_uc, 50_000)
    subject = f"float:{NBO_CBD.id}:KES"
    approved(ledger_uc, 31_000)  # 19,000 left: below the reorder level, above 80 % of it
    assert alerts_of(ledger_uc)[0] == ("AlertRaised", "float_low", subject)
    [proposal] = ledger_uc.scalars(select(Replenishment).where(Replenishment.branch_id == NBO_CBD.id))
    assert (proposal.status, proposal.requested_by, proposal.amount_minor) == ("requested", "system", 8_100_000)
    assert alerts_of(ledger_uc)[1] == ("AlertRaised", "replenishment_proposed", f"replenishment:{proposal.id}")

    approved(ledger_uc, 4_000)  # 15,000: below 16,000, 80 % of the reorder level; no second proposal
    assert alerts_of(ledger_uc) == [("AlertRaised", "float_critical", subject)]
    assert ledger_uc.one("AlertRaised")["severity"] == "critical"
    assert ledger_uc.scalar(select(func.count()).select_from(Replenishment)) == 1

    decided = ledger_uc.run(
        service.decide_replenishment, command(catalog.DECIDE_REPLENISHMENT, replenishment_decision(proposal.id), FIONA)
    )
    assert decided["body"]["status"] == "approved"
    assert float_of(ledger_uc)["available"] == 96_000  # 15,000 + the 81,000 proposed
    assert sorted(alerts_of(ledger_uc)) == [
        ("AlertCleared", "float_critical", subject),
        ("AlertCleared", "float_low", subject),
        ("AlertCleared", "replenishment_proposed", f"replenishment:{proposal.id}"),
    ]


def test_raising_a_floats_reorder_level_above_its_balance_raises_the_alert(ledger_uc: Harness) -> None:
    fund(ledger_uc, 10_000)
    levels_update(ledger_uc, 1, reorder_level=kes(12_000), imprest=kes(30_000))
    assert [a[1] for a in alerts_of(ledger_uc)] == ["float_low", "replenishment_proposed"]
    levels_update(ledger_uc, 2, reorder_level=kes(5_000), imprest=kes(30_000))
    assert alerts_of(ledger_uc) == [("AlertCleared", "float_low", f"float:{NBO_CBD.id}:KES")]


# -- each float's days ----------------------------------------------------------------


def test_a_floats_days_kept_with_its_transfers_equal_those_rebuilt_from_the_transfers(ledger_uc: Harness) -> None:
    fund(ledger_uc, 10_000)
    paid = approved(ledger_uc, 1_200)
    ledger_uc.run(service.on_payment_completed, event(catalog.PAYMENT_COMPLETED, payment_completed(paid, kes(1_200))))
    held = approved(ledger_uc, 700)
    cancelled = approved(ledger_uc, 300)
    ledger_uc.run(service.on_requisition_cancelled, event(catalog.REQUISITION_CANCELLED, requisition_closed(cancelled)))
    assert held

    def kept() -> list[tuple[Any, ...]]:
        return [
            (
                d.id,
                d.funded_minor,
                d.spent_minor,
                d.spent_by_category,
                d.closing_balance_minor,
                d.closing_available_minor,
            )
            for d in ledger_uc.scalars(select(FloatDay).order_by(FloatDay.id))
        ]

    live = kept()
    [(_, funded, spent, by_category, balance, available)] = live
    assert (funded, spent, balance, available) == (1_000_000, 120_000, 880_000, 810_000)
    assert by_category == {"fuel": 120_000}
    with ledger_uc.session() as session:
        days.rebuild(session)
        session.flush()
        rebuilt = [
            (
                d.id,
                d.funded_minor,
                d.spent_minor,
                d.spent_by_category,
                d.closing_balance_minor,
                d.closing_available_minor,
            )
            for d in session.scalars(select(FloatDay).order_by(FloatDay.id))
        ]
    assert rebuilt == live


# -- cash counts --------------------------------------------------------------------------


def count_cash(uc: Harness, notes: dict[str, int], actor: Actor = BOB) -> dict[str, Any]:
    payload = {"branch_id": NBO_CBD.id, "currency": "KES", "denominations": notes, "comment": "month end"}
    return dict(uc.run(cash.record_cash_count, command(catalog.RECORD_CASH_COUNT, payload, actor))["body"])


def decide_variance(uc: Harness, count_id: str, actor: Actor, approve: bool = True) -> dict[str, Any]:
    payload = {"id": count_id, "approve": approve, "comment": "checked"}
    return dict(uc.run(cash.decide_variance, command(catalog.DECIDE_VARIANCE, payload, actor)))


def over_short_balance(uc: Harness) -> int:
    account = uc.scalar(select(Account).where(Account.code == f"over_short:{NBO_CBD.code}:KES"))
    return int(account.debits_posted - account.credits_posted)


def test_a_count_that_matches_the_books_is_balanced(ledger_uc: Harness) -> None:
    fund(ledger_uc, 10_000)
    approved(ledger_uc, 1_000)  # held, still in the till: the book balance is posted money
    counted = count_cash(ledger_uc, {"1000": 9, "500": 2})
    assert (counted["status"], counted["variance"]["minor_units"]) == ("balanced", 0)


def test_a_shortage_is_posted_to_over_short_once_finance_approves_it(ledger_uc: Harness) -> None:
    fund(ledger_uc, 10_000)
    short = count_cash(ledger_uc, {"1000": 9, "500": 1, "0.50": 4})  # 9,502.00: 498.00 short
    assert (short["status"], short["variance"]["minor_units"], short["book"]["minor_units"]) == (
        "pending",
        -49_800,
        1_000_000,
    )
    assert float_of(ledger_uc)["balance"] == 10_000  # nothing posted before the decision
    with pytest.raises(DomainError, match="their own count"):
        decide_variance(ledger_uc, short["id"], an_actor("bob", "finance", branches=[NBO_CBD]))
    decided = decide_variance(ledger_uc, short["id"], FIONA)
    assert decided["body"]["status"] == "approved"
    assert float_of(ledger_uc)["balance"] == 9_502
    assert over_short_balance(ledger_uc) == 49_800
    with pytest.raises(DomainError, match="nothing to decide"):
        decide_variance(ledger_uc, short["id"], FIONA)


def test_an_overage_above_the_limit_is_the_cfos_and_a_rejection_posts_nothing(ledger_uc: Harness) -> None:
    fund(ledger_uc, 10_000)
    over = count_cash(ledger_uc, {"1000": 16}, actor=TOM)  # 6,000.00 over: above the CFO limit
    assert (over["variance"]["minor_units"], over["needs_cfo"]) == (600_000, True)
    with pytest.raises(DomainError, match="the CFO's to decide"):
        decide_variance(ledger_uc, over["id"], FIONA)
    decide_variance(ledger_uc, over["id"], CAROL)
    assert (float_of(ledger_uc)["balance"], over_short_balance(ledger_uc)) == (16_000, -600_000)
    again = count_cash(ledger_uc, {"1000": 15})
    assert decide_variance(ledger_uc, again["id"], FIONA, approve=False)["body"]["status"] == "rejected"
    assert float_of(ledger_uc)["balance"] == 16_000


def test_only_the_branchs_custodian_or_treasury_counts_its_cash(ledger_uc: Harness) -> None:
    fund(ledger_uc, 10_000)
    with pytest.raises(DomainError, match="own custodian"):
        count_cash(ledger_uc, {"1000": 10}, actor=MARY)
    with pytest.raises(DomainError):
        count_cash(ledger_uc, {"1000": 10}, actor=FIONA)
    with pytest.raises(DomainError, match="no UGX denomination"):  # shillings of Uganda have no cents
        cash.counted_minor({"0.50": 1}, "UGX")
