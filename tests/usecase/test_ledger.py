"""Ledger use cases in process: funding a float, reserving for approved requisitions (or queueing
them until funds arrive), replenishments, posting and releasing holds, and balanced books."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from services.ledger import domain, service
from services.ledger.models import Account, AwaitingFunds, Transfer
from services.ledger.schemas import float_body
from shared.contracts import catalog
from shared.contracts.envelope import Actor
from tests.factories import (
    ADMIN,
    BOB,
    FIONA,
    MSA_01,
    NBO_CBD,
    TOM,
    Branch,
    an_actor,
    command,
    event,
    float_funding,
    kes,
    maintenance,
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
    assert (alert["kind"], alert["severity"], alert["source"]) == ("awaiting_funds", "warning", "ledger")
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
    # A requisition still waiting for funds just leaves the queue.
    ledger_uc.run(
        service.on_requisition_cancelled, event(catalog.REQUISITION_CANCELLED, requisition_closed(also_queued))
    )
    assert (ledger_uc.emitted_types(), waiting(ledger_uc)) == ([], [])


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
