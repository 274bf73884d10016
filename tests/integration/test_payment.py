"""Paying through real processes: OTP enrolment, execution, disbursement, retries, lockout, segregation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from cryptography.fernet import Fernet

from shared.config import Settings
from shared.db.engine import Database
from tests.payment_support import (
    Person,
    bank,
    events,
    known_to_payment_only,
    mobile,
    new_person,
    pay,
    requisition_status,
    reserved_requisition,
    treasurer,
    user_id,
    wait_payment,
)
from tests.support import Api, Stack, scalar, wait_for

PROBLEM = "application/problem+json"


def attempts(dbs: dict[str, Database], person: Person, result: str | None = None) -> list[str]:
    """The reasons of a user's recorded OTP attempts, oldest first."""
    from sqlalchemy import text

    sql = (
        "SELECT reason FROM otp_attempts WHERE user_id = :u" + (" AND result = :res" if result else "") + " ORDER BY id"
    )
    with dbs["payment"].engine.connect() as conn:
        return list(conn.execute(text(sql), {"u": person.user_id, "res": result}).scalars())


def provider_rows(dbs: dict[str, Database], payment_id: str) -> list[Any]:
    from sqlalchemy import text

    with dbs["payment"].engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT provider, calls, reference FROM provider_transfers WHERE idempotency_key = :k"),
                {"k": payment_id},
            )
        )


# -- enrolment ------------------------------------------------------------------------


def test_enrolment_shows_the_secret_once_and_keeps_it_sealed(
    api: Api, dbs: dict[str, Database], settings: Settings, stack: Stack
) -> None:
    person = new_person(dbs)
    enrolled = api.post("/api/v1/otp/enrolment", person.token)

    assert enrolled.status_code == 201, enrolled.text
    body = enrolled.json()
    assert body["status"] == "pending"
    assert body["qr_svg"].startswith("<svg")
    parsed = pyotp.parse_uri(body["provisioning_uri"])
    assert len(parsed.secret) == 32  # 160 bits
    assert parsed.issuer == "Petty cash"
    # At rest: sealed with the OTP key, never in the clear, not even in a stored reply or a log.
    sealed = scalar(dbs["payment"], "SELECT sealed_secret FROM otp_enrolments WHERE user_id = :u", u=person.user_id)
    assert parsed.secret not in sealed
    assert Fernet(settings.otp_encryption_key.encode()).decrypt(sealed.encode()).decode() == parsed.secret
    assert not scalar(dbs["payment"], "SELECT count(*) FROM inbox WHERE result::text LIKE :s", s=f"%{parsed.secret}%")
    worker = next(p for p in stack.procs if p.name == "worker-payment")
    assert parsed.secret not in worker.log()


def test_a_pending_enrolment_is_replaced_an_active_one_is_not(api: Api, dbs: dict[str, Database]) -> None:
    person = new_person(dbs)
    first = pyotp.TOTP(
        pyotp.parse_uri(api.post("/api/v1/otp/enrolment", person.token).json()["provisioning_uri"]).secret
    )
    second = api.post("/api/v1/otp/enrolment", person.token)
    assert second.status_code == 201
    replacement = pyotp.TOTP(pyotp.parse_uri(second.json()["provisioning_uri"]).secret)

    stale = api.post("/api/v1/otp/activation", person.token, json={"code": first.now()})
    assert stale.status_code == 422
    assert stale.json()["type"] == "otp-invalid"
    activated = api.post("/api/v1/otp/activation", person.token, json={"code": replacement.now()})
    assert activated.status_code == 200, activated.text
    assert activated.json()["status"] == "active"

    again = api.post("/api/v1/otp/enrolment", person.token)
    assert again.status_code == 409
    assert again.json()["type"] == "otp-already-enrolled"
    assert attempts(dbs, person) == ["otp-invalid", "ok"]  # activation attempts are recorded too


def test_only_second_factor_roles_enrol(api: Api, tokens: dict[str, str], dbs: dict[str, Database]) -> None:
    refused = api.post("/api/v1/otp/enrolment", tokens["alice"])
    assert refused.status_code == 403
    assert refused.headers["Content-Type"] == PROBLEM
    # The gateway's permission table refuses first (the service's own refusal,
    # "second-factor-roles-only", is tested in tests/usecase/test_payment.py).
    assert (refused.json()["type"], refused.json()["action"]) == ("forbidden", "enrol-second-factor")
    # Finance signs in with a second factor, so it enrols one too (it still does not pay).
    enrolled = api.post("/api/v1/otp/enrolment", new_person(dbs, roles=("finance",)).token)
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["status"] == "pending"


@pytest.mark.parametrize("body", [{}, {"code": "12345"}, {"code": "12345a"}, {"code": 123456}, {"code": "1", "x": 1}])
def test_a_malformed_code_is_a_bad_request(api: Api, tokens: dict[str, str], body: dict[str, Any]) -> None:
    response = api.post("/api/v1/otp/activation", tokens["tom"], json=body)
    assert response.status_code == 400
    assert response.json()["type"] == "invalid-request"


# -- paying ---------------------------------------------------------------------------


def test_a_cash_payment_is_paid_once_and_the_requisition_closes_paid(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    person, device = treasurer(api, dbs)
    requisition = reserved_requisition(api, tokens, settings, dbs)
    rid = requisition["id"]

    started = pay(api, person, rid, device.code())

    assert started.status_code == 201, started.text
    assert started.json()["state"] == "processing"
    assert started.json()["executions"] == 1
    assert started.headers["Location"] == f"/api/v1/requisitions/{rid}/payment"
    paid = wait_payment(api, person.token, rid, "completed")
    assert paid["amount"] == requisition["amount"]
    assert paid["provider"] == "cash"
    assert paid["provider_reference"].startswith("CASH-")
    assert [(e["outcome"], [a["outcome"] for a in e["attempts"]]) for e in paid["history"]] == [("completed", ["paid"])]
    wait_for(lambda: requisition_status(api, tokens["alice"], rid) == "paid", 15, what="the requisition to close")
    assert provider_rows(dbs, paid["id"]) == [("cash", 1, paid["provider_reference"])]
    assert len(events(dbs["payment"], "PaymentStarted", rid)) == 1
    completed = events(dbs["payment"], "PaymentCompleted", rid)
    assert len(completed) == 1
    assert completed[0]["executor_id"] == person.user_id
    assert completed[0]["amount"] == requisition["amount"]
    assert attempts(dbs, person, "accepted") == ["ok", "ok"]  # activation, then the payment

    # Paid is final: another code changes nothing.
    again = pay(api, person, rid, device.code())
    assert again.status_code == 409
    assert again.json()["type"] == "already-paid"


def test_the_requester_reads_the_payment_other_branches_do_not(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    person, device = treasurer(api, dbs)
    rid = reserved_requisition(api, tokens, settings, dbs)["id"]
    assert pay(api, person, rid, device.code()).status_code == 201
    wait_payment(api, person.token, rid, "completed")

    assert api.get(f"/api/v1/requisitions/{rid}/payment", tokens["alice"]).json()["state"] == "completed"
    assert api.get(f"/api/v1/requisitions/{rid}/payment", tokens["sam"]).status_code == 404


def test_the_same_code_sent_concurrently_is_accepted_once(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    person, device = treasurer(api, dbs)
    # Two requisitions, so nothing but the code's time step stands between the requests.
    rids = [reserved_requisition(api, tokens, settings, dbs)["id"] for _ in range(2)]
    code = device.code()
    barrier = threading.Barrier(len(rids))

    def send(rid: str) -> Any:
        barrier.wait()
        return pay(Api(api.base_url), person, rid, code)

    with ThreadPoolExecutor(len(rids)) as pool:
        responses = list(pool.map(send, rids))

    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 409)
    assert refused.json()["type"] == "otp-already-used"
    step = scalar(
        dbs["payment"],
        "SELECT count(*) FROM otp_step_uses WHERE user_id = :u AND purpose = 'payment'",
        u=person.user_id,
    )
    assert step == 1
    assert (
        scalar(dbs["payment"], "SELECT count(*) FROM payments WHERE requisition_id IN (:a, :b)", a=rids[0], b=rids[1])
        == 1
    )


def test_a_burst_on_one_requisition_starts_one_execution(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    person, device = treasurer(api, dbs)
    rid = reserved_requisition(api, tokens, settings, dbs)["id"]
    code = device.code()
    barrier = threading.Barrier(5)

    def send(_: int) -> Any:
        barrier.wait()
        return pay(Api(api.base_url), person, rid, code)

    with ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(send, range(5)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409], [r.text for r in responses]
    assert {r.json()["type"] for r in responses if r.status_code == 409} <= {
        "payment-in-progress",
        "otp-already-used",
        "already-paid",
    }
    wait_payment(api, person.token, rid, "completed")
    assert len(events(dbs["payment"], "PaymentStarted", rid)) == 1


def test_five_wrong_codes_lock_the_user_out_for_fifteen_minutes(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    person, device = treasurer(api, dbs)
    rid = known_to_payment_only(settings, dbs, user_id(dbs, "alice"), [user_id(dbs, "bob")])

    answers = [pay(api, person, rid, device.wrong_code()) for _ in range(5)]

    assert [a.status_code for a in answers] == [422, 422, 422, 422, 429]
    assert [a.json().get("attempts_left") for a in answers[:4]] == [4, 3, 2, 1]
    assert answers[4].json()["type"] == "otp-locked-out"
    # Even the right code is refused now, without being checked.
    locked = pay(api, person, rid, device.code())
    assert locked.status_code == 429
    assert locked.headers["Content-Type"] == PROBLEM
    assert 14 * 60 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert locked.json()["type"] == "otp-locked-out"
    assert attempts(dbs, person, "refused") == ["otp-invalid"] * 4 + ["otp-locked-out"] * 2
    until = scalar(dbs["payment"], "SELECT locked_until FROM otp_guards WHERE user_id = :u", u=person.user_id)
    assert timedelta(minutes=14) < until - datetime.now(UTC) <= timedelta(minutes=15)
    assert scalar(dbs["payment"], "SELECT count(*) FROM payments WHERE requisition_id = :r", r=rid) == 0


def test_a_burst_of_wrong_codes_cannot_slip_past_the_lockout(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    person, device = treasurer(api, dbs)
    rid = known_to_payment_only(settings, dbs, user_id(dbs, "alice"), [user_id(dbs, "bob")])
    guesses = [device.wrong_code() for _ in range(12)]

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda code: pay(api, person, rid, code), guesses))

    # A user's attempts are checked one after another: four wrong codes, then the lock. The
    # gateway's limit of codes per minute (the activation spent one) turns the last few away
    # before the payment service sees them; each that reached it is recorded.
    assert sorted(a.status_code for a in answers) == [422] * 4 + [429] * 8
    reached = [a for a in answers if a.json()["type"] != "rate-limited"]
    assert len(reached) >= 5
    assert len(attempts(dbs, person, "refused")) == len(reached)
    assert scalar(dbs["payment"], "SELECT locked_until FROM otp_guards WHERE user_id = :u", u=person.user_id)


def test_a_good_code_resets_the_count_of_wrong_ones(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    person, device = treasurer(api, dbs)
    rid = reserved_requisition(api, tokens, settings, dbs)["id"]
    for _ in range(4):
        assert pay(api, person, rid, device.wrong_code()).status_code == 422
    assert pay(api, person, rid, device.code()).status_code == 201
    assert scalar(dbs["payment"], "SELECT failures FROM otp_guards WHERE user_id = :u", u=person.user_id) == 0


# -- who may pay ----------------------------------------------------------------------


def test_segregation_of_duties_and_treasury_only(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    requester, requester_device = treasurer(api, dbs)
    approver, approver_device = treasurer(api, dbs)
    rid = known_to_payment_only(settings, dbs, requester.user_id, [user_id(dbs, "bob"), approver.user_id])

    as_requester = pay(api, requester, rid, requester_device.code())
    as_approver = pay(api, approver, rid, approver_device.code())
    as_staff = api.post(f"/api/v1/requisitions/{rid}/payment", tokens["alice"], json={"otp": "123456"})

    assert (as_requester.status_code, as_requester.json()["type"], as_requester.json()["rule"]) == (
        403,
        "segregation-of-duties",
        "requester-cannot-pay",
    )
    assert (as_approver.status_code, as_approver.json()["rule"]) == (403, "approver-cannot-pay")
    # Staff are refused by the gateway's permission table before the payment service is asked
    # (which refuses them again, "treasury-only": tests/usecase/test_payment.py).
    assert (as_staff.status_code, as_staff.json()["type"], as_staff.json()["action"]) == (
        403,
        "forbidden",
        "execute-payment",
    )
    assert attempts(dbs, requester, "refused") == ["segregation-of-duties"]
    assert attempts(dbs, approver, "refused") == ["segregation-of-duties"]
    alice_attempts = scalar(
        dbs["payment"],
        "SELECT count(*) FROM otp_attempts WHERE requisition_id = :r AND user_id = :u",
        r=rid,
        u=user_id(dbs, "alice"),
    )
    assert alice_attempts == 0
    # Refusals for who you are do not count towards the OTP lockout.
    assert not scalar(dbs["payment"], "SELECT count(*) FROM otp_guards WHERE user_id = :u", u=requester.user_id)


def test_only_a_reserved_live_requisition_is_paid(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    person, device = treasurer(api, dbs)
    alice, bob = user_id(dbs, "alice"), [user_id(dbs, "bob")]
    unreserved = known_to_payment_only(settings, dbs, alice, bob, reserved=False)
    cancelled = known_to_payment_only(settings, dbs, alice, bob, cancelled=True)

    answers = {
        "unreserved": pay(api, person, unreserved, device.wrong_code()),
        "cancelled": pay(api, person, cancelled, device.wrong_code()),
        "unknown": pay(api, person, "00000000-0000-4000-8000-000000000000", device.wrong_code()),
    }

    assert {k: (r.status_code, r.json()["type"]) for k, r in answers.items()} == {
        "unreserved": (409, "funds-not-reserved"),
        "cancelled": (409, "requisition-cancelled"),
        "unknown": (404, "not-found"),
    }
    # The state refused them before any code was checked: no failure counted.
    assert not scalar(dbs["payment"], "SELECT count(*) FROM otp_guards WHERE user_id = :u", u=person.user_id)


def test_paying_needs_an_active_authenticator(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    person = new_person(dbs)
    rid = known_to_payment_only(settings, dbs, user_id(dbs, "alice"), [user_id(dbs, "bob")])
    response = pay(api, person, rid, "123456")
    assert (response.status_code, response.json()["type"]) == (409, "otp-not-enrolled")


# -- disbursement: retries and failures -----------------------------------------------


def test_transient_provider_errors_are_retried_and_pay_exactly_once(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    person, device = treasurer(api, dbs)
    rid = reserved_requisition(api, tokens, settings, dbs, payee=bank("0123-FAIL-TRANSIENT-2"))["id"]

    assert pay(api, person, rid, device.code()).status_code == 201
    paid = wait_payment(api, person.token, rid, "completed")

    assert [a["outcome"] for a in paid["history"][0]["attempts"]] == ["transient", "transient", "paid"]
    assert provider_rows(dbs, paid["id"]) == [("bank", 3, paid["provider_reference"])]
    assert len(events(dbs["payment"], "PaymentCompleted", rid)) == 1
    assert events(dbs["payment"], "PaymentFailed", rid) == []


def test_a_lost_reply_is_retried_and_the_provider_does_not_pay_twice(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    person, device = treasurer(api, dbs)
    rid = reserved_requisition(api, tokens, settings, dbs, payee=mobile("0712-FAIL-LOST-REPLY"))["id"]

    assert pay(api, person, rid, device.code()).status_code == 201
    paid = wait_payment(api, person.token, rid, "completed")

    calls = paid["history"][0]["attempts"]
    assert [a["outcome"] for a in calls] == ["transient", "paid"]
    # The provider paid on the first call; the retry got that same payment back.
    assert provider_rows(dbs, paid["id"]) == [("mobile_money", 2, paid["provider_reference"])]


def test_retries_stop_at_three_then_a_fresh_execution_pays(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    person, device = treasurer(api, dbs)
    # The first four calls fail: one call and three retries is all an execution gets.
    rid = reserved_requisition(api, tokens, settings, dbs, payee=bank("FAIL-TRANSIENT-4"))["id"]

    assert pay(api, person, rid, device.code()).status_code == 201
    failed = wait_payment(api, person.token, rid, "failed")
    assert [a["outcome"] for a in failed["history"][0]["attempts"]] == ["transient"] * 4
    assert "gave up after 4 calls" in failed["last_error"]
    assert events(dbs["payment"], "PaymentFailed", rid)[0] | {"reason": ""} == {
        "requisition_id": rid,
        "payment_id": failed["id"],
        "reason": "",
        "final": False,
        "executions_left": 2,
    }
    wait_for(lambda: requisition_status(api, tokens["alice"], rid) == "payment_failed", 15, what="payment_failed")

    retried = pay(api, person, rid, device.code())
    assert retried.status_code == 201, retried.text
    assert retried.json()["executions"] == 2
    paid = wait_payment(api, person.token, rid, "completed")
    assert [e["outcome"] for e in paid["history"]] == ["failed", "completed"]
    assert provider_rows(dbs, paid["id"]) == [("bank", 5, paid["provider_reference"])]
    wait_for(lambda: requisition_status(api, tokens["alice"], rid) == "paid", 15, what="the requisition to close")


def test_a_permanent_failure_fails_at_once_and_executions_run_out(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    first, first_device = treasurer(api, dbs)
    second, second_device = treasurer(api, dbs)
    rid = reserved_requisition(api, tokens, settings, dbs, payee=bank("FAIL-PERMANENT"))["id"]

    for n, (person, device) in enumerate([(first, first_device), (first, first_device), (second, second_device)], 1):
        started = pay(api, person, rid, device.code())
        assert started.status_code == 201, started.text
        failed = wait_payment(api, person.token, rid, "failed")
        assert failed["executions"] == n
        # Permanent: one call, no retry.
        assert [a["outcome"] for a in failed["history"][-1]["attempts"]] == ["permanent"]

    failures = events(dbs["payment"], "PaymentFailed", rid)
    assert [(f["final"], f["executions_left"]) for f in failures] == [(False, 2), (False, 1), (True, 0)]
    alerts = [a for a in events(dbs["payment"], "AlertRaised", rid) if a["kind"] == "payment_failed"]
    assert len(alerts) == 3
    assert {a["severity"] for a in alerts} == {"critical"}
    assert provider_rows(dbs, failed["id"])[0].reference is None  # nothing was ever paid

    blocked = pay(api, second, rid, second_device.code())
    assert blocked.status_code == 422
    assert blocked.json()["type"] == "execution-limit-reached"
    assert scalar(dbs["payment"], "SELECT executions FROM payments WHERE requisition_id = :r", r=rid) == 3
    wait_for(lambda: requisition_status(api, tokens["alice"], rid) == "payment_failed", 15, what="payment_failed")
