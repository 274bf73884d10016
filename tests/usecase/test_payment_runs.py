"""Payment runs in process: many ready payments authorised with one real TOTP code, each item
checked as a payment on its own is (left out with the reason when a rule stops it), each
payment started exactly once, maker-checker above the configured total, a failed payment
paid in a later run, and the code's step spent once (and not at all when nothing is paid)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select

from services.payment import batches, runs, service
from services.payment.models import OtpStepUse, Payment, PaymentExecution, PaymentRun, ProviderAttempt
from shared.config import Settings
from shared.contracts import catalog
from shared.contracts.envelope import Actor, Envelope
from shared.messaging.errors import DomainError
from shared.messaging.runtime import RetryLater
from tests.factories import ALICE, BOB, TOM, an_actor, bank_payee, command
from tests.usecase.conftest import Harness
from tests.usecase.test_payment import Cashier, Desk

TESS = an_actor("tess", "treasury")  # a second treasury officer (the checker)
AMOUNT = 250_000  # Desk.payable's KES 2,500.00, in minor units


class RunDesk(Desk):
    """The payment desk with the run use cases, and a threshold the test sets."""

    def __init__(self, uc: Harness, settings: Settings, dual_above_minor: int = 10_000_000) -> None:
        super().__init__(uc, settings)
        # One call at a time: the harness's database is one connection, shared by the test.
        self.config = replace(self.config, run_dual_above_minor=dual_above_minor, calls_at_once=1)
        self.executing = partial(self.executing.func, config=self.config)
        self.starting = partial(runs.start_payment_run, config=self.config)
        self.authorising = partial(runs.authorise_payment_run, config=self.config)
        self.cancelling = partial(runs.cancel_payment_run, config=self.config)

    def run(self, actor: Actor, rids: list[str], code: str) -> Any:
        payload = {"requisition_ids": [uuid.UUID(r) for r in rids], "otp": code}
        return self._launched(self.uc.run(self.starting, command(catalog.START_PAYMENT_RUN, payload, actor)))

    def run_refused(self, actor: Actor, rids: list[str], code: str) -> DomainError:
        payload = {"requisition_ids": [uuid.UUID(r) for r in rids], "otp": code}
        return self.uc.refuse(self.starting, command(catalog.START_PAYMENT_RUN, payload, actor))

    def authorise(self, actor: Actor, run_id: str, code: str) -> Any:
        payload = {"run_id": uuid.UUID(run_id), "otp": code}
        return self._launched(self.uc.run(self.authorising, command(catalog.AUTHORISE_PAYMENT_RUN, payload, actor)))

    def _launched(self, reply: Any) -> Any:
        """The command's reply, once the launch job it sent (if it sent one) has run, as the bus
        runs it straight after the commit; what the launch sent is the last use case's."""
        for job in self.uc.emitted(catalog.LAUNCH_PAYMENT_RUN.name):
            self.launch(job)
        return reply

    def launch(self, job: Envelope) -> Any:
        return self.uc.job(partial(runs.launch_payment_run, config=self.config), job)

    def authorise_refused(self, actor: Actor, run_id: str, code: str) -> DomainError:
        payload = {"run_id": uuid.UUID(run_id), "otp": code}
        return self.uc.refuse(self.authorising, command(catalog.AUTHORISE_PAYMENT_RUN, payload, actor))

    def disburse_batch(self, rids: list[str]) -> Any:
        """The batch disbursement job for these requisitions' payments, as a run sends it."""
        ids = [str(self.payment(rid).id) for rid in rids]
        envelope = command(catalog.DISBURSE_PAYMENTS, {"payment_ids": ids}, TOM)
        return self.uc.job(partial(batches.disburse_payments, config=self.config), envelope)

    def executions(self, rid: str) -> list[PaymentExecution]:
        payment = self.payment(rid)
        assert payment is not None
        return self.uc.scalars(
            select(PaymentExecution).where(PaymentExecution.payment_id == payment.id).order_by(PaymentExecution.number)
        )

    def steps_spent(self, actor: Actor) -> int:
        return len(self.uc.scalars(select(OtpStepUse).where(OtpStepUse.user_id == actor.user_id)))


@pytest.fixture
def desk(payment_uc: Harness, settings: Settings) -> RunDesk:
    return RunDesk(payment_uc, settings)


@pytest.fixture
def tom(desk: RunDesk) -> Cashier:
    return desk.cashier(TOM)


def _batched(uc: Harness) -> set[str]:
    """The payments the last use case sent to the batch disbursement jobs."""
    return {pid for job in uc.emitted(catalog.DISBURSE_PAYMENTS.name) for pid in job.payload["payment_ids"]}


def _items(reply: dict[str, Any]) -> dict[str, tuple[bool, str | None]]:
    return {i["requisition_id"]: (i["included"], (i["left_out"] or {}).get("rule")) for i in reply["body"]["items"]}


def test_one_code_starts_every_item_of_a_run_once(payment_uc: Harness, desk: RunDesk, tom: Cashier) -> None:
    rids = [desk.payable() for _ in range(3)]
    spent_before = desk.steps_spent(TOM)
    reply = desk.run(TOM, rids, tom.code())
    body = reply["body"]
    assert (reply["status"], body["state"], body["count"]) == (201, "started", 3)
    assert body["total"] == {"minor_units": 3 * AMOUNT, "currency": "KES"}
    assert desk.steps_spent(TOM) == spent_before + 1  # one code, one step, for the whole run
    for rid in rids:
        payment = desk.payment(rid)
        assert (payment.state, payment.executions, payment.executor_id) == ("processing", 1, TOM.user_id)
        assert [(e.number, str(e.run_id)) for e in desk.executions(rid)] == [(1, body["id"])]
    jobs = payment_uc.emitted(catalog.DISBURSE_PAYMENTS.name)  # one batch of three, no job each
    started = payment_uc.emitted(catalog.PAYMENT_STARTED.name)
    assert [sorted(j.payload["payment_ids"]) for j in jobs] == [sorted(str(desk.payment(r).id) for r in rids)]
    assert payment_uc.emitted(catalog.DISBURSE_PAYMENT.name) == []
    assert sorted(s.payload["requisition_id"] for s in started) == sorted(rids)
    assert desk.attempts(TOM, "run") == [("accepted", "ok")]
    snapshot = payment_uc.snapshot(catalog.PAYMENT_RUN_CHANGED.name, body["id"])
    assert [i["execution"] for i in snapshot["body"]["items"]] == [1, 1, 1]


def test_items_no_rule_lets_the_officer_pay_are_left_out_with_the_reason(desk: RunDesk, tom: Cashier) -> None:
    good = desk.payable()
    mine = desk.payable(requester=TOM)  # segregation of duties: Tom asked for it
    approved_by_tom = desk.payable(approvers=(BOB, TOM))
    unreserved = desk.payable(reserved=False)
    cancelled = desk.payable()
    desk.cancelled(cancelled)
    under_way = desk.payable()
    assert desk.pay(TOM, under_way, tom.code())["status"] == 201
    unknown = str(uuid.uuid4())

    reply = desk.run(TOM, [good, mine, approved_by_tom, unreserved, cancelled, under_way, unknown], tom.code())
    assert (reply["body"]["count"], reply["body"]["total"]["minor_units"]) == (1, AMOUNT)
    assert _items(reply) == {
        good: (True, None),
        mine: (False, "requester-cannot-pay"),
        approved_by_tom: (False, "approver-cannot-pay"),
        unreserved: (False, "funds-not-reserved"),
        cancelled: (False, "requisition-cancelled"),
        under_way: (False, "payment-in-progress"),
        unknown: (False, "requisition-not-approved"),
    }
    assert desk.payment(mine) is None
    assert desk.payment(unreserved) is None
    assert [e.run_id for e in desk.executions(under_way)] == [None]  # not started again by the run


def test_a_second_run_of_the_same_payments_starts_none_of_them_again(desk: RunDesk, tom: Cashier) -> None:
    rids = [desk.payable() for _ in range(2)]
    assert desk.run(TOM, rids, tom.code())["body"]["count"] == 2
    refused = desk.run_refused(TOM, rids, tom.code())
    assert (refused.code, refused.status) == ("nothing-to-pay", 422)
    assert [x["rule"] for x in refused.extra["left"]] == ["payment-in-progress"] * 2
    assert all(len(desk.executions(r)) == 1 for r in rids)


def test_nothing_to_pay_is_refused_before_the_code_is_spent(desk: RunDesk, tom: Cashier) -> None:
    mine = desk.payable(requester=TOM)
    code = tom.code()
    refused = desk.run_refused(TOM, [mine], code)
    assert (refused.code, refused.status) == ("nothing-to-pay", 422)
    assert desk.run(TOM, [desk.payable()], code)["status"] == 201  # the same code still pays


def test_a_wrong_code_is_counted_and_starts_nothing(payment_uc: Harness, desk: RunDesk, tom: Cashier) -> None:
    rid = desk.payable()
    reply = desk.run(TOM, [rid], tom.wrong_code())
    problem = reply["problem"]
    assert (reply["status"], problem["type"], problem["attempts_left"]) == (422, "otp-invalid", 4)
    assert desk.payment(rid) is None
    assert payment_uc.scalars(select(PaymentRun)) == []
    assert desk.attempts(TOM, "run") == [("refused", "otp-invalid")]


def test_only_treasury_makes_a_run(desk: RunDesk) -> None:
    refused = desk.run_refused(ALICE, [desk.payable()], "123456")
    assert (refused.code, refused.status) == ("treasury-only", 403)


# -- maker-checker --------------------------------------------------------------------------


@pytest.fixture
def dual(payment_uc: Harness, settings: Settings) -> RunDesk:
    """A desk whose runs above two payments' total need a second officer."""
    return RunDesk(payment_uc, settings, dual_above_minor=2 * AMOUNT)


def test_a_run_above_the_total_waits_for_a_second_officer_who_is_not_its_maker(
    payment_uc: Harness, dual: RunDesk
) -> None:
    tom, tess = dual.cashier(TOM), dual.cashier(TESS)
    at_threshold = dual.run(TOM, [dual.payable(), dual.payable()], tom.code())["body"]
    assert (at_threshold["state"], at_threshold["needs_second_officer"]) == ("started", False)

    rids = [dual.payable() for _ in range(3)]
    made = dual.run(TOM, rids, tom.code())["body"]
    assert (made["state"], made["needs_second_officer"], made["count"]) == ("awaiting_second", True, 3)
    assert all(dual.payment(r) is None for r in rids)  # nothing is paid on one officer's word

    by_maker = dual.authorise_refused(TOM, made["id"], tom.code())
    assert (by_maker.code, by_maker.status) == ("maker-checker", 403)

    checked = dual.authorise(TESS, made["id"], tess.code())["body"]
    assert (checked["state"], checked["checker_id"], checked["count"]) == ("started", TESS.user_id, 3)
    for rid in rids:
        payment = dual.payment(rid)
        assert (payment.state, payment.executor_id) == ("processing", TOM.user_id)
    assert _batched(payment_uc) == {str(dual.payment(r).id) for r in rids}

    again = dual.authorise_refused(TESS, made["id"], tess.code())
    assert (again.code, again.status) == ("run-not-awaiting-authorisation", 409)


def test_the_authorisation_starts_nothing_itself_and_its_launch_starts_each_payment_once(
    payment_uc: Harness, dual: RunDesk
) -> None:
    tom, tess = dual.cashier(TOM), dual.cashier(TESS)
    rids = [dual.payable() for _ in range(3)]
    made = dual.run(TOM, rids, tom.code())["body"]
    payload = {"run_id": uuid.UUID(made["id"]), "otp": tess.code()}
    reply = payment_uc.run(dual.authorising, command(catalog.AUTHORISE_PAYMENT_RUN, payload, TESS))
    # What the officer waits for: the code checked, the run marked started, one job sent.
    assert (reply["body"]["state"], reply["body"]["started_at"]) == ("started", None)
    assert [i["execution"] for i in reply["body"]["items"]] == [None, None, None]
    assert payment_uc.emitted_types() == [catalog.LAUNCH_PAYMENT_RUN.name]
    assert all(dual.payment(r) is None for r in rids)
    [job] = payment_uc.emitted(catalog.LAUNCH_PAYMENT_RUN.name)

    assert dual.launch(job) == {"run_id": made["id"], "launched": True, "started": 3}
    launched = payment_uc.snapshot(catalog.PAYMENT_RUN_CHANGED.name, made["id"])["body"]
    assert launched["started_at"] is not None
    assert [i["execution"] for i in launched["items"]] == [1, 1, 1]
    assert _batched(payment_uc) == {str(dual.payment(r).id) for r in rids}
    assert dual.launch(job) == {"run_id": made["id"], "launched": False}  # delivered again: nothing
    assert payment_uc.emitted_types() == []
    for rid in rids:
        assert [(e.number, e.executor_id) for e in dual.executions(rid)] == [(1, TOM.user_id)]


def test_a_checker_who_approved_a_payment_in_the_run_may_not_authorise_it(dual: RunDesk) -> None:
    tom, tess = dual.cashier(TOM), dual.cashier(TESS)
    rids = [dual.payable(approvers=(BOB, TESS)), dual.payable(), dual.payable()]
    made = dual.run(TOM, rids, tom.code())["body"]
    refused = dual.authorise_refused(TESS, made["id"], tess.code())
    assert (refused.code, refused.status) == ("segregation-of-duties", 403)
    assert all(dual.payment(r) is None for r in rids)


def test_an_item_paid_elsewhere_before_the_checker_is_left_out_at_the_launch(dual: RunDesk) -> None:
    tom, tess = dual.cashier(TOM), dual.cashier(TESS)
    rids = [dual.payable() for _ in range(3)]
    made = dual.run(TOM, rids, tom.code())["body"]
    assert dual.pay(TOM, rids[0], tom.code())["status"] == 201  # paid on its own meanwhile
    dual.authorise(TESS, made["id"], tess.code())
    launched = {"body": dual.uc.snapshot(catalog.PAYMENT_RUN_CHANGED.name, made["id"])["body"]}
    assert _items(launched)[rids[0]] == (False, "payment-in-progress")
    assert (launched["body"]["count"], launched["body"]["total"]["minor_units"]) == (2, 2 * AMOUNT)
    assert [e.run_id for e in dual.executions(rids[0])] == [None]


def test_a_waiting_run_is_cancelled_and_never_starts(dual: RunDesk) -> None:
    tom, tess = dual.cashier(TOM), dual.cashier(TESS)
    rids = [dual.payable() for _ in range(3)]
    made = dual.run(TOM, rids, tom.code())["body"]
    payload = {"run_id": uuid.UUID(made["id"]), "reason": "Wrong week"}
    cancelled = dual.uc.run(dual.cancelling, command(catalog.CANCEL_PAYMENT_RUN, payload, TOM))["body"]
    assert (cancelled["state"], cancelled["cancel_reason"]) == ("cancelled", "Wrong week")
    refused = dual.authorise_refused(TESS, made["id"], tess.code())
    assert refused.code == "run-not-awaiting-authorisation"
    assert all(dual.payment(r) is None for r in rids)


# -- outcomes -------------------------------------------------------------------------------


def test_a_failed_payment_of_one_run_is_paid_by_a_later_run(payment_uc: Harness, desk: RunDesk, tom: Cashier) -> None:
    failing = desk.payable(payee=bank_payee("FAIL-PERMANENT"))
    fine = desk.payable()
    first = desk.run(TOM, [failing, fine], tom.code())["body"]
    assert desk.disburse(failing)["state"] == "failed"
    assert desk.disburse(fine)["state"] == "completed"
    assert desk.disburse(fine)["state"] == "completed"  # a redelivered job pays nothing twice

    second = desk.run(TOM, [failing, fine], tom.code())
    assert _items(second) == {failing: (True, None), fine: (False, "already-paid")}
    executions = desk.executions(failing)
    assert [(e.number, str(e.run_id), e.outcome) for e in executions] == [
        (1, first["id"], "failed"),
        (2, second["body"]["id"], "processing"),
    ]
    assert payment_uc.scalar(select(Payment.executions).where(Payment.id == desk.payment(fine).id)) == 1


def test_a_batch_job_pays_a_runs_payments_in_two_commits_and_hands_on_a_retry(
    payment_uc: Harness, desk: RunDesk, tom: Cashier
) -> None:
    fine = [desk.payable() for _ in range(3)]
    refused = desk.payable(payee=bank_payee("FAIL-PERMANENT"))
    flaky = desk.payable(payee=bank_payee("0123-FAIL-TRANSIENT-1"))  # the bank fails its first call
    rids = [*fine, refused, flaky]
    desk.run(TOM, rids, tom.code())

    assert desk.disburse_batch(rids) == {"payments": 5, "called": 5, "handed_on": 1}
    # One snapshot a payment: the lease the claim took shows nothing, the outcome does.
    published = [e.payload["requisition_id"] for e in payment_uc.emitted(catalog.PAYMENT_CHANGED.name)]
    assert sorted(published) == sorted(rids)
    assert sorted(e.payload["requisition_id"] for e in payment_uc.emitted("PaymentCompleted")) == sorted(fine)
    assert [e.payload["requisition_id"] for e in payment_uc.emitted("PaymentFailed")] == [refused]
    handed = payment_uc.emitted(catalog.DISBURSE_PAYMENT.name)  # the retry goes to its own job
    assert [h.payload["payment_id"] for h in handed] == [str(desk.payment(flaky).id)]
    with pytest.raises(RetryLater):
        desk.disburse(flaky)  # early: that job waits for the retry's time
    desk.clock.advance(seconds=desk.config.retry.cap_seconds)
    assert desk.disburse(flaky)["state"] == "completed"

    # Delivered again, the batch calls nobody: every payment is paid or failed.
    assert desk.disburse_batch(rids) == {"payments": 5, "called": 0, "handed_on": 0}
    calls = payment_uc.scalars(select(ProviderAttempt).order_by(ProviderAttempt.id))
    assert sorted((str(c.payment_id), c.outcome) for c in calls) == sorted(
        [(str(desk.payment(r).id), "paid") for r in fine]
        + [(str(desk.payment(refused).id), "permanent")]
        + [(str(desk.payment(flaky).id), "transient"), (str(desk.payment(flaky).id), "paid")]
    )


def test_a_batch_leaves_a_payment_whose_call_is_in_flight_to_its_own_job(
    payment_uc: Harness, desk: RunDesk, tom: Cashier
) -> None:
    rids = [desk.payable(), desk.payable()]
    desk.run(TOM, rids, tom.code())
    busy = desk.payment(rids[0])
    with desk.uc.database.uow() as uow:  # another job leased this payment's call and is making it
        locked = service.locked_payments(uow.session, [busy.id])[0]
        assert isinstance(
            service.claim_locked(
                uow, command(catalog.DISBURSE_PAYMENT, {"payment_id": str(busy.id)}, TOM), locked, desk.config
            ),
            service.CallClaim,
        )
        uow.commit()
    assert desk.disburse_batch(rids) == {"payments": 2, "called": 1, "handed_on": 0}
    handed = payment_uc.emitted(catalog.DISBURSE_PAYMENT.name)
    assert [h.payload["payment_id"] for h in handed] == [str(busy.id)]
    assert desk.payment(rids[0]).state == "processing"
    assert desk.payment(rids[1]).state == "completed"
