"""The earlier system's nine scenarios, for real: HTTP at the gateway, every service's worker a
separate process, the payment executed with a real TOTP code and posted by the real ledger.

After every test the books are checked: the trial balance balances (posted and pending), the
cached totals equal those derived from transfers, no float is below zero, and no requisition
has more than one payment, one provider payout or one posting.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from services.gateway import identity
from shared.db.engine import Database
from tests.payment_support import CASH, Authenticator, Person, bank, ensure_float, pay, treasurer, wait_payment
from tests.support import Api, kes, requisition_body, scalar, settled_float, wait_for


def status(api: Api, token: str, rid: str) -> str:
    return str(api.get(f"/api/v1/requisitions/{rid}", token).json()["status"])


def wait_status(api: Api, token: str, rid: str, wanted: str, timeout: float = 30) -> None:
    wait_for(lambda: status(api, token, rid) == wanted, timeout, 0.05, f"{rid} to become {wanted}")


def submit(api: Api, token: str, **changes: Any) -> str:
    response = api.post("/api/v1/requisitions", token, json=requisition_body(**changes))
    assert response.status_code == 201, response.text
    rid = str(response.json()["id"])
    wait_for(lambda: status(api, token, rid) in ("pending_approval", "pending_urgency_confirmation"), 15)
    return rid


def approve(api: Api, token: str, rid: str, action: str = "approve") -> None:
    response = api.post(f"/api/v1/requisitions/{rid}/{action}", token, json={"comment": "ok"})
    assert response.status_code == 200, response.text


def postings(dbs: dict[str, Database], rid: str, kind: str) -> int:
    return int(
        scalar(dbs["ledger"], "SELECT count(*) FROM transfers WHERE requisition_id = :r AND kind = :k", r=rid, k=kind)
    )


@pytest.fixture
def cashier(api: Api, dbs: dict[str, Database], tokens: dict[str, str]) -> tuple[Person, Authenticator]:
    """A treasury user with an activated authenticator, and a funded NBO-CBD float."""
    ensure_float(api, tokens)
    return treasurer(api, dbs)


@pytest.fixture(autouse=True)
def books_stay_right(api: Api, tokens: dict[str, str], dbs: dict[str, Database]) -> Iterator[None]:
    yield
    balance = api.get("/api/v1/ledger/trial-balance", tokens["aud"]).json()
    assert balance["balanced"] is True, balance["totals"]
    assert balance["cache_mismatches"] == []
    assert balance["negative_floats"] == []
    for kind in ("hold", "post", "void"):
        most = scalar(
            dbs["ledger"],
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM transfers "
            "WHERE kind = :k GROUP BY requisition_id) AS per_requisition",
            k=kind,
        )
        assert most <= 1, f"a requisition has {most} {kind} transfers"
    assert (
        scalar(
            dbs["ledger"],
            "SELECT count(*) FROM transfers h JOIN transfers p ON p.pending_id = h.id "
            "JOIN transfers v ON v.pending_id = h.id WHERE p.id <> v.id",
        )
        == 0
    )
    most_payouts = scalar(
        dbs["payment"],
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM provider_transfers "
        "WHERE paid_at IS NOT NULL GROUP BY idempotency_key) AS per_payment",
    )
    assert most_payouts <= 1
    payments = scalar(dbs["payment"], "SELECT count(*) FROM payments")
    assert payments == scalar(dbs["payment"], "SELECT count(DISTINCT requisition_id) FROM payments")


def test_complete_requisition_approval_payment_and_ledger(
    api: Api, tokens: dict[str, str], dbs: dict[str, Database], cashier: tuple[Person, Authenticator]
) -> None:
    person, device = cashier
    rid = submit(api, tokens["alice"], amount=kes(5_000), payee=CASH)
    approve(api, tokens["bob"], rid)
    wait_status(api, tokens["alice"], rid, "reserved")
    before = settled_float(api, tokens["aud"], dbs["ledger"], "NBO-CBD")

    executed = pay(api, person, rid, device.code())
    assert executed.status_code == 201, executed.text
    wait_payment(api, person.token, rid, "completed")
    wait_status(api, tokens["alice"], rid, "paid")
    wait_for(lambda: postings(dbs, rid, "post") == 1, 15, what="the posting")

    after = settled_float(api, tokens["aud"], dbs["ledger"], "NBO-CBD")
    assert after["balance"] == before["balance"] - 500_000
    assert after["held"] == before["held"] - 500_000
    assert after["available"] == before["available"]
    history = [h["action"] for h in api.get(f"/api/v1/requisitions/{rid}", tokens["alice"]).json()["history"]]
    assert history[-3:] == ["funds-reserved", "payment-started", "paid"]


def test_rejected_requisition_never_reaches_the_ledger(
    api: Api, tokens: dict[str, str], dbs: dict[str, Database]
) -> None:
    rid = submit(api, tokens["alice"], amount=kes(2_000))
    response = api.post(f"/api/v1/requisitions/{rid}/reject", tokens["bob"], json={"reason": "Not a business expense"})
    assert response.status_code == 200
    wait_status(api, tokens["alice"], rid, "rejected")
    assert postings(dbs, rid, "hold") == 0
    assert api.get(f"/api/v1/requisitions/{rid}/payment", tokens["tom"]).status_code == 404


def test_no_self_approval(api: Api, tokens: dict[str, str], dbs: dict[str, Database]) -> None:
    rid = submit(api, tokens["mary"], branch="MSA-01", amount=kes(1_000))
    refused = api.post(f"/api/v1/requisitions/{rid}/approve", tokens["mary"], json={"comment": "mine"})
    assert refused.status_code == 403
    assert refused.json()["type"] == "self-approval"
    assert status(api, tokens["mary"], rid) == "pending_approval"
    assert postings(dbs, rid, "hold") == 0


def test_a_different_approver_authorises(
    api: Api, tokens: dict[str, str], dbs: dict[str, Database], cashier: tuple[Person, Authenticator]
) -> None:
    person, device = cashier
    rid = submit(api, tokens["alice"], amount=kes(3_000))
    for outsider in ("rita", "fiona", "tom"):
        assert api.post(f"/api/v1/requisitions/{rid}/approve", tokens[outsider], json={}).status_code == 403
    approve(api, tokens["bob"], rid)
    wait_status(api, tokens["alice"], rid, "reserved")
    assert pay(api, person, rid, device.code()).status_code == 201
    wait_status(api, tokens["alice"], rid, "paid")
    wait_for(lambda: postings(dbs, rid, "post") == 1, 15)


def test_urgent_request_fast_tracked_and_paid(
    api: Api, tokens: dict[str, str], dbs: dict[str, Database], cashier: tuple[Person, Authenticator]
) -> None:
    person, device = cashier
    rid = submit(api, tokens["alice"], amount=kes(30_000), urgent=True, urgency_reason="Burst pipe flooding the hall")
    assert status(api, tokens["alice"], rid) == "pending_urgency_confirmation"
    approve(api, tokens["rita"], rid, "confirm-urgency")
    wait_status(api, tokens["alice"], rid, "reserved")
    assert pay(api, person, rid, device.code()).status_code == 201
    wait_status(api, tokens["alice"], rid, "paid")
    wait_for(lambda: postings(dbs, rid, "post") == 1, 15)


def test_payment_failure_then_retry_with_a_fresh_code(
    api: Api, tokens: dict[str, str], dbs: dict[str, Database], cashier: tuple[Person, Authenticator]
) -> None:
    person, device = cashier
    # The bank fails the first four calls: one execution (a call and three retries) fails.
    rid = submit(api, tokens["alice"], amount=kes(4_000), payee=bank("FAIL-TRANSIENT-4"))
    approve(api, tokens["bob"], rid)
    wait_status(api, tokens["alice"], rid, "reserved")
    assert pay(api, person, rid, device.code()).status_code == 201
    failed = wait_payment(api, person.token, rid, "failed", timeout=60)
    assert failed["executions"] == 1
    wait_status(api, tokens["alice"], rid, "payment_failed")
    assert postings(dbs, rid, "void") == 0  # executions left: the money stays held

    again = pay(api, person, rid, device.code())
    assert again.status_code == 201, again.text
    wait_payment(api, person.token, rid, "completed", timeout=60)
    wait_status(api, tokens["alice"], rid, "paid")
    wait_for(lambda: postings(dbs, rid, "post") == 1, 15)


def test_the_execution_limit_blocks_further_attempts(
    api: Api, tokens: dict[str, str], dbs: dict[str, Database], cashier: tuple[Person, Authenticator]
) -> None:
    # Each attempt by a treasurer of its own: one authenticator yields at most three fresh codes
    # per 30-second step, and waiting for the next step is not what this test is about.
    payers = [treasurer(api, dbs) for _ in range(4)]
    rid = submit(api, tokens["alice"], amount=kes(1_500), payee=bank("FAIL-PERMANENT"))
    approve(api, tokens["bob"], rid)
    wait_status(api, tokens["alice"], rid, "reserved")
    held_before = settled_float(api, tokens["aud"], dbs["ledger"], "NBO-CBD")["held"]
    for execution, (person, device) in enumerate(payers[:3], start=1):
        assert pay(api, person, rid, device.code()).status_code == 201
        wait_for(
            lambda n=execution, token=person.token: (
                (p := api.get(f"/api/v1/requisitions/{rid}/payment", token).json())["state"] == "failed"
                and p["executions"] == n
            ),
            30,
        )
    person, device = payers[3]
    blocked = pay(api, person, rid, device.code())
    assert blocked.status_code == 422
    assert blocked.json()["type"] == "execution-limit-reached"
    wait_for(lambda: postings(dbs, rid, "void") == 1, 15, what="the hold to be voided")
    assert settled_float(api, tokens["aud"], dbs["ledger"], "NBO-CBD")["held"] == held_before - 150_000
    assert status(api, tokens["alice"], rid) == "payment_failed"
    alerts = api.get("/api/v1/alerts", tokens["fiona"]).json()["items"]
    assert any(a["requisition_id"] == rid and a["kind"] == "payment_failed" for a in alerts)


def test_executor_segregation_of_duties(
    api: Api, tokens: dict[str, str], dbs: dict[str, Database], cashier: tuple[Person, Authenticator]
) -> None:
    person, device = cashier
    with dbs["gateway"].uow() as uow:
        keeper = identity.create_user(
            uow.session, "keeper", "Kim (manager, also treasury)", ["branch_manager", "treasury"], ["NBO-CBD"]
        )
        keeper_token = identity.issue_token(uow.session, keeper)
        uow.commit()
    keeper_person = Person(str(keeper.id), "keeper", keeper_token)
    from tests.payment_support import enrol

    wait_for(lambda: scalar(dbs["approval"], "SELECT count(*) FROM approvers WHERE username = 'keeper'"), 15)
    keeper_device = enrol(api, keeper_person)
    rid = submit(api, tokens["alice"], amount=kes(2_500))
    approve(api, keeper_token, rid)  # as branch manager
    wait_status(api, tokens["alice"], rid, "reserved")
    refused = pay(api, keeper_person, rid, keeper_device.code())
    assert refused.status_code == 403
    assert refused.json()["rule"] == "approver-cannot-pay"
    not_treasury = api.post(f"/api/v1/requisitions/{rid}/payment", tokens["bob"], json={"otp": "123456"})
    assert not_treasury.status_code == 403
    assert pay(api, person, rid, device.code()).status_code == 201
    wait_status(api, tokens["alice"], rid, "paid")


def test_cancelling_a_reserved_requisition_releases_the_money(
    api: Api, tokens: dict[str, str], dbs: dict[str, Database], cashier: tuple[Person, Authenticator]
) -> None:
    person, device = cashier
    rid = submit(api, tokens["alice"], amount=kes(6_000))
    approve(api, tokens["bob"], rid)
    wait_status(api, tokens["alice"], rid, "reserved")
    held = settled_float(api, tokens["aud"], dbs["ledger"], "NBO-CBD")["held"]
    assert api.post(f"/api/v1/requisitions/{rid}/cancel", tokens["alice"], json={}).status_code == 409  # decided
    cancelled = api.post(f"/api/v1/requisitions/{rid}/cancel", tokens["fiona"], json={"comment": "Duplicate of V-17"})
    assert cancelled.status_code == 200
    wait_for(lambda: postings(dbs, rid, "void") == 1, 15)
    assert settled_float(api, tokens["aud"], dbs["ledger"], "NBO-CBD")["held"] == held - 600_000
    wait_for(lambda: pay(api, person, rid, device.code()).status_code == 409, 15, what="payment to be refused")
