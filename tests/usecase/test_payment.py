"""Payment use cases in process: OTP enrolment and activation, the second factor at sign-in and
resetting an authenticator, executing a payment with a real TOTP code, wrong codes and the
lockout, who may pay, and disbursement with its failures and retries. The clock is the one
``PaymentConfig`` takes, so codes and lockouts are deterministic."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from services.payment import domain, service
from services.payment.models import OtpAttempt, OtpEnrolment, OtpGuard, OtpStepUse, Payment, ProviderAttempt
from shared.config import Settings
from shared.contracts import catalog
from shared.contracts.envelope import Actor, Envelope
from shared.contracts.payment import unseal_enrolment
from shared.messaging.errors import DomainError
from shared.messaging.runtime import RetryLater
from tests.factories import (
    ADMIN,
    ALICE,
    BOB,
    CAROL,
    FIONA,
    TOM,
    an_actor,
    authenticator_reset,
    bank_payee,
    command,
    event,
    funds_reserved,
    kes,
    otp_code,
    payment_authorisation,
    requisition_approved,
    requisition_closed,
    second_factor,
)
from tests.support import ManualClock
from tests.usecase.conftest import Harness

DISBURSE = catalog.DISBURSE_PAYMENT.name


Clock = ManualClock


@dataclass
class Cashier:
    """A treasury user and the authenticator app they enrolled; each code is of a fresh time step."""

    actor: Actor
    totp: pyotp.TOTP
    clock: Clock

    def code(self) -> str:
        self.clock.advance(seconds=domain.OTP_INTERVAL_SECONDS)
        return str(self.totp.at(self.clock.now))

    def wrong_code(self) -> str:
        return f"{(int(self.code()) + 1) % 1_000_000:06d}"


class Desk:
    """The payment service's use cases, bound to the configuration its worker builds from the
    settings (``tasks.register``), on a clock the test moves."""

    def __init__(self, uc: Harness, settings: Settings) -> None:
        self.uc = uc
        self.clock = Clock(datetime(2026, 5, 4, 9, 0, 0, tzinfo=UTC))
        self.config = replace(service.PaymentConfig.from_settings(settings), clock=self.clock)
        self.enrolling = partial(service.enroll_otp, config=self.config)
        self.activating = partial(service.activate_otp, config=self.config)
        self.executing = partial(service.execute_payment, config=self.config)
        self.verifying = partial(service.verify_second_factor, config=self.config)
        self.resetting = partial(service.reset_authenticator, config=self.config)

    def enrol(self, actor: Actor) -> pyotp.TOTP:
        """Enrol an authenticator (pending); the app, from the secret shown once."""
        reply = self.uc.run(self.enrolling, command(catalog.ENROLL_OTP, {}, actor))
        assert (reply["status"], reply["body"]["status"]) == (201, "pending")
        shown = unseal_enrolment(self.config.otp_key, reply["body"]["sealed"])
        return pyotp.parse_uri(shown["provisioning_uri"])

    def cashier(self, actor: Actor) -> Cashier:
        """A treasury user with an active authenticator."""
        person = Cashier(actor, self.enrol(actor), self.clock)
        assert self.uc.run(self.activating, activation(actor, person.code()))["status"] == 200
        return person

    def sign_in(self, actor: Actor, code: str) -> Any:
        """Check a sign-in's code; a wrong or spent code is an answer (counted), not a refusal."""
        return self.uc.run(self.verifying, command(catalog.VERIFY_SECOND_FACTOR, second_factor(code), actor))

    def sign_in_refused(self, actor: Actor, code: str) -> DomainError:
        """A sign-in the rules refuse, recorded as the runtime records it (``record_refused_sign_in``)."""
        envelope = command(catalog.VERIFY_SECOND_FACTOR, second_factor(code), actor)
        return self.uc.refuse(self.verifying, envelope, on_refusal=service.record_refused_sign_in)

    def reset(self, actor: Actor, whose: Actor | str) -> Any:
        return self.uc.run(self.resetting, command(catalog.RESET_AUTHENTICATOR, authenticator_reset(whose), actor))

    def reset_refused(self, actor: Actor, whose: Actor | str) -> DomainError:
        """A reset the rules refuse, recorded as the runtime records it (``record_refused_reset``)."""
        envelope = command(catalog.RESET_AUTHENTICATOR, authenticator_reset(whose), actor)
        return self.uc.refuse(self.resetting, envelope, on_refusal=service.record_refused_reset)

    def payable(
        self, *, requester: Actor = ALICE, approvers: tuple[Actor, ...] = (BOB,), reserved: bool = True, **more: Any
    ) -> str:
        """A requisition the payment service heard was approved (and, unless not, reserved); its id."""
        rid = str(uuid.uuid4())
        approved = requisition_approved(rid, requester=requester, approvers=approvers, amount=kes(2_500), **more)
        self.uc.run(service.on_requisition_approved, event(catalog.REQUISITION_APPROVED, approved, approvers[-1]))
        if reserved:
            reserved_event = event(catalog.FUNDS_RESERVED, funds_reserved(rid, amount=kes(2_500)))
            self.uc.run(service.on_funds_reserved, reserved_event)
        return rid

    def cancelled(self, rid: str) -> None:
        self.uc.run(service.on_requisition_cancelled, event(catalog.REQUISITION_CANCELLED, requisition_closed(rid)))

    def pay(self, actor: Actor, rid: str, code: str) -> Any:
        """Execute a payment; a wrong or spent code is an answer (counted), not a refusal."""
        return self.uc.run(self.executing, command(catalog.EXECUTE_PAYMENT, payment_authorisation(rid, code), actor))

    def refused(self, actor: Actor, rid: str, code: str) -> DomainError:
        """An execution the rules refuse, recorded as the runtime records it (``record_refused_execution``)."""
        envelope = command(catalog.EXECUTE_PAYMENT, payment_authorisation(rid, code), actor)
        return self.uc.refuse(self.executing, envelope, on_refusal=service.record_refused_execution)

    def disburse(self, rid: str) -> Any:
        """The disbursement job for a requisition's payment, as the outbox sends it after an execution."""
        payment_id = str(domain.payment_id_for(uuid.UUID(rid)))
        envelope = command(catalog.DISBURSE_PAYMENT, {"payment_id": payment_id}, TOM)
        return self.uc.job(partial(service.disburse_payment, config=self.config), envelope)

    def payment(self, rid: str) -> Payment | None:
        return self.uc.scalar(select(Payment).where(Payment.requisition_id == uuid.UUID(rid)))

    def attempts(self, actor: Actor, action: str | None = None) -> list[tuple[str, str]]:
        """A user's OTP-bearing attempts (of one action, if given), oldest first: (result, reason)."""
        query = select(OtpAttempt).where(OtpAttempt.user_id == actor.user_id).order_by(OtpAttempt.id)
        if action is not None:
            query = query.where(OtpAttempt.action == action)
        return [(a.result, a.reason) for a in self.uc.scalars(query)]


def activation(actor: Actor, code: str) -> Envelope:
    return command(catalog.ACTIVATE_OTP, otp_code(code), actor)


@pytest.fixture
def desk(payment_uc: Harness, settings: Settings) -> Desk:
    return Desk(payment_uc, settings)


@pytest.fixture
def tom(desk: Desk) -> Cashier:
    """Tom of treasury, his authenticator enrolled and active."""
    return desk.cashier(TOM)


# -- enrolment ------------------------------------------------------------------------


def test_only_second_factor_roles_enrol_an_authenticator(payment_uc: Harness, desk: Desk) -> None:
    refused = payment_uc.refuse(desk.enrolling, command(catalog.ENROLL_OTP, {}, ALICE))
    assert (refused.code, refused.status) == ("second-factor-roles-only", 403)
    activating = payment_uc.refuse(desk.activating, activation(ALICE, "123456"), service.record_refused_activation)
    assert (activating.code, activating.status) == ("second-factor-roles-only", 403)
    assert payment_uc.get(OtpEnrolment, ALICE.user_id) is None


@pytest.mark.parametrize("person", [TOM, FIONA, CAROL, ADMIN], ids=lambda a: a.username)
def test_every_second_factor_role_enrols_and_activates_an_authenticator(
    payment_uc: Harness, desk: Desk, person: Actor
) -> None:
    desk.cashier(person)  # enrolled (pending), then activated with a first code
    enrolment = payment_uc.get(OtpEnrolment, person.user_id)
    assert (enrolment.status, enrolment.activated_at) == ("active", desk.clock.now)
    assert desk.attempts(person) == [("accepted", "ok")]


def test_a_pending_enrolment_is_replaced_and_activated_by_its_first_good_code(payment_uc: Harness, desk: Desk) -> None:
    first = desk.enrol(TOM)
    second = desk.enrol(TOM)  # the first secret was shown once and may be lost
    sealed = payment_uc.get(OtpEnrolment, TOM.user_id).sealed_secret
    assert second.secret not in sealed  # kept sealed, never in the clear

    desk.clock.advance(seconds=30)
    stale = payment_uc.refuse(
        desk.activating, activation(TOM, first.at(desk.clock.now)), on_refusal=service.record_refused_activation
    )
    assert (stale.code, stale.status) == ("otp-invalid", 422)
    assert payment_uc.run(desk.activating, activation(TOM, second.at(desk.clock.now)))["body"]["status"] == "active"
    assert desk.attempts(TOM) == [("refused", "otp-invalid"), ("accepted", "ok")]

    again = payment_uc.refuse(desk.enrolling, command(catalog.ENROLL_OTP, {}, TOM))
    assert (again.code, again.status) == ("otp-already-enrolled", 409)
    desk.clock.advance(seconds=30)
    assert payment_uc.refuse(desk.activating, activation(TOM, second.at(desk.clock.now))).code == "otp-already-active"


# -- the second factor at sign-in -----------------------------------------------------


@pytest.fixture
def fiona(desk: Desk) -> Cashier:
    """Fiona of finance, her authenticator enrolled and active (she signs in with it, never pays)."""
    return desk.cashier(FIONA)


def test_a_sign_in_code_is_accepted_once(payment_uc: Harness, desk: Desk, fiona: Cashier) -> None:
    code = fiona.code()
    assert desk.sign_in(FIONA, code) == {"status": 200, "body": {"user_id": FIONA.user_id, "verified": True}}
    [spent] = payment_uc.scalars(select(OtpStepUse).where(OtpStepUse.purpose == "sign-in"))
    assert (spent.user_id, spent.time_step) == (FIONA.user_id, domain.time_step(desk.clock.now))

    again = desk.sign_in(FIONA, code)
    assert (again["status"], again["problem"]["type"], again["problem"]["attempts_left"]) == (
        409,
        "otp-already-used",
        4,
    )
    assert payment_uc.get(OtpGuard, FIONA.user_id).failures == 1  # a spent code counts, as at payment
    assert desk.attempts(FIONA, "sign-in") == [("accepted", "ok"), ("refused", "otp-already-used")]
    assert payment_uc.emitted(snapshots=True) == []  # signing in changes no read model


def test_a_code_signs_in_or_pays_never_both(desk: Desk, tom: Cashier) -> None:
    rid = desk.payable()
    code = tom.code()
    assert desk.sign_in(TOM, code)["status"] == 200
    reused = desk.pay(TOM, rid, code)
    assert (reused["status"], reused["problem"]["type"]) == (409, "otp-already-used")
    assert desk.payment(rid) is None


def test_wrong_codes_at_sign_in_and_at_payment_share_one_budget_and_the_fifth_locks_both(
    payment_uc: Harness, desk: Desk, tom: Cashier
) -> None:
    rid = desk.payable()
    answers = [desk.sign_in(TOM, tom.wrong_code()) for _ in range(3)]
    answers.append(desk.pay(TOM, rid, tom.wrong_code()))
    answers.append(desk.sign_in(TOM, tom.wrong_code()))
    assert [(a["status"], a["problem"]["type"]) for a in answers] == [(422, "otp-invalid")] * 4 + [
        (429, "otp-locked-out")
    ]
    assert [a["problem"]["attempts_left"] for a in answers[:4]] == [4, 3, 2, 1]
    until = desk.clock.now + timedelta(minutes=15)
    assert answers[4]["problem"]["retry_after"] == 15 * 60
    assert answers[4]["problem"]["locked_until"] == until.isoformat()
    assert payment_uc.get(OtpGuard, TOM.user_id).locked_until == until

    # Locked: a good code is refused at sign-in and at payment, without being checked or counted.
    locked = desk.sign_in_refused(TOM, tom.code())
    assert (locked.code, locked.status) == ("otp-locked-out", 429)
    assert 14 * 60 < locked.extra["retry_after"] <= 15 * 60
    assert locked.extra["locked_until"] == until.isoformat()
    paying = desk.refused(TOM, rid, tom.code())
    assert (paying.code, paying.status) == ("otp-locked-out", 429)
    assert desk.attempts(TOM, "sign-in") == [("refused", "otp-invalid")] * 3 + [("refused", "otp-locked-out")] * 2
    assert desk.attempts(TOM, "execute") == [("refused", "otp-invalid"), ("refused", "otp-locked-out")]

    desk.clock.advance(minutes=15)
    assert desk.sign_in(TOM, tom.code())["status"] == 200


def test_a_good_sign_in_code_ends_the_run_of_wrong_ones(payment_uc: Harness, desk: Desk, fiona: Cashier) -> None:
    for _ in range(4):
        assert desk.sign_in(FIONA, fiona.wrong_code())["status"] == 422
    assert desk.sign_in(FIONA, fiona.code())["status"] == 200
    assert payment_uc.get(OtpGuard, FIONA.user_id).failures == 0


def test_signing_in_needs_a_second_factor_role_and_an_active_authenticator(payment_uc: Harness, desk: Desk) -> None:
    staff = desk.sign_in_refused(ALICE, "123456")
    assert (staff.code, staff.status) == ("second-factor-roles-only", 403)
    never = desk.sign_in_refused(CAROL, "123456")
    assert (never.code, never.status) == ("otp-not-enrolled", 409)
    pending = Cashier(CAROL, desk.enrol(CAROL), desk.clock)
    refused = desk.sign_in_refused(CAROL, pending.code())
    assert (refused.code, refused.status) == ("otp-not-enrolled", 409)
    assert desk.attempts(ALICE, "sign-in") == [("refused", "second-factor-roles-only")]
    assert desk.attempts(CAROL, "sign-in") == [("refused", "otp-not-enrolled")] * 2
    # Refused for who they are or what they lack: no code was counted.
    assert payment_uc.get(OtpGuard, CAROL.user_id) is None


# -- resetting an authenticator -------------------------------------------------------


def test_an_admin_resets_someones_authenticator_and_they_enrol_again(
    payment_uc: Harness, desk: Desk, fiona: Cashier
) -> None:
    for _ in range(2):
        desk.sign_in(FIONA, fiona.wrong_code())
    reset = desk.reset(ADMIN, FIONA)
    assert reset["status"] == 200
    assert (reset["body"]["user_id"], reset["body"]["status"], reset["body"]["activated_at"]) == (
        FIONA.user_id,
        "reset",
        None,
    )
    enrolment = payment_uc.get(OtpEnrolment, FIONA.user_id)
    assert (enrolment.status, enrolment.sealed_secret) == ("reset", "")
    assert payment_uc.get(OtpGuard, FIONA.user_id).failures == 0
    [audit] = payment_uc.scalars(select(OtpAttempt).where(OtpAttempt.action == "reset"))
    assert (audit.user_id, audit.result, audit.detail) == (
        ADMIN.user_id,
        "accepted",
        f"authenticator of {FIONA.user_id}",
    )

    # The old authenticator no longer signs in; a new one is enrolled and activated as the first was.
    gone = desk.sign_in_refused(FIONA, fiona.code())
    assert (gone.code, gone.status) == ("otp-not-enrolled", 409)
    assert payment_uc.refuse(desk.activating, activation(FIONA, fiona.code())).code == "otp-not-enrolled"
    renewed = desk.cashier(FIONA)
    assert desk.sign_in(FIONA, renewed.code())["status"] == 200


def test_a_user_resets_their_own_authenticator(payment_uc: Harness, desk: Desk, tom: Cashier) -> None:
    assert desk.reset(TOM, TOM)["body"]["status"] == "reset"
    rid = desk.payable()
    assert desk.refused(TOM, rid, tom.code()).code == "otp-not-enrolled"  # nor does it pay
    assert desk.attempts(TOM, "reset") == [("accepted", "ok")]


def test_a_reset_does_not_lift_a_running_lock(payment_uc: Harness, desk: Desk, tom: Cashier) -> None:
    for _ in range(5):
        desk.sign_in(TOM, tom.wrong_code())
    locked_until = payment_uc.get(OtpGuard, TOM.user_id).locked_until
    desk.reset(TOM, TOM)
    renewed = desk.cashier(TOM)
    assert desk.sign_in_refused(TOM, renewed.code()).code == "otp-locked-out"
    assert payment_uc.get(OtpGuard, TOM.user_id).locked_until == locked_until


def test_nobody_else_resets_an_authenticator(payment_uc: Harness, desk: Desk, tom: Cashier) -> None:
    answers = {
        "finance, tom's": desk.reset_refused(FIONA, TOM),
        "staff, tom's": desk.reset_refused(ALICE, TOM),
        "staff, own": desk.reset_refused(ALICE, ALICE),
        "finance, own, none": desk.reset_refused(FIONA, FIONA),
        "admin, unknown user": desk.reset_refused(ADMIN, "nobody"),
    }
    assert {who: (r.code, r.status) for who, r in answers.items()} == {
        "finance, tom's": ("not-your-authenticator", 403),
        "staff, tom's": ("not-your-authenticator", 403),
        "staff, own": ("second-factor-roles-only", 403),
        "finance, own, none": ("no-authenticator", 404),
        "admin, unknown user": ("no-authenticator", 404),
    }
    assert payment_uc.get(OtpEnrolment, TOM.user_id).status == "active"
    assert desk.attempts(FIONA, "reset") == [("refused", "not-your-authenticator"), ("refused", "no-authenticator")]
    [refused] = payment_uc.scalars(select(OtpAttempt).where(OtpAttempt.user_id == ADMIN.user_id))
    assert refused.detail == "This user has no authenticator to reset. (authenticator of nobody)"


# -- the authenticator read model -----------------------------------------------------


def test_every_change_of_an_authenticator_publishes_its_snapshot(payment_uc: Harness, desk: Desk) -> None:
    def published() -> dict[str, Any]:
        snapshot = payment_uc.snapshot("AuthenticatorChanged", FIONA.user_id)
        assert snapshot["status"] == snapshot["body"]["status"]
        return snapshot

    totp = desk.enrol(FIONA)
    enrolled = published()
    assert {k: enrolled[k] for k in ("id", "version", "status")} == {
        "id": FIONA.user_id,
        "version": 1,
        "status": "pending",
    }
    assert enrolled["body"] == {
        "user_id": FIONA.user_id,
        "username": "fiona",
        "status": "pending",
        "activated_at": None,
    }

    desk.clock.advance(seconds=30)
    payment_uc.run(desk.activating, activation(FIONA, totp.at(desk.clock.now)))
    activated = published()
    assert (activated["version"], activated["status"]) == (2, "active")
    assert activated["body"]["activated_at"] == desk.clock.now.isoformat()

    desk.reset(ADMIN, FIONA)
    reset = published()
    assert (reset["version"], reset["status"], reset["body"]["activated_at"]) == (3, "reset", None)

    desk.enrol(FIONA)
    assert (published()["version"], published()["status"]) == (4, "pending")


def test_a_refused_change_publishes_no_snapshot(payment_uc: Harness, desk: Desk, tom: Cashier) -> None:
    payment_uc.refuse(desk.enrolling, command(catalog.ENROLL_OTP, {}, TOM))  # already active
    assert payment_uc.emitted(snapshots=True) == []
    desk.reset_refused(FIONA, TOM)
    assert payment_uc.emitted(snapshots=True) == []


def test_a_rebuild_pages_through_every_authenticator(payment_uc: Harness, desk: Desk) -> None:
    people = [TOM, FIONA, CAROL]
    for person in people:
        desk.enrol(person)
    desk.reset(ADMIN, CAROL)
    with payment_uc.session() as session:
        first = payment_uc.snapshots.export(session, "authenticator", None, 2)
        rest = payment_uc.snapshots.export(session, "authenticator", first["next"], 2)
    items = first["items"] + rest["items"]
    assert rest["next"] is None
    # Each once, over two pages (in the database's order of ids, whatever its collation).
    assert sorted(i["id"] for i in items) == sorted(p.user_id for p in people)
    assert (len(first["items"]), len(rest["items"])) == (2, 1)
    assert {i["id"]: (i["status"], i["version"]) for i in items} == {
        TOM.user_id: ("pending", 1),
        FIONA.user_id: ("pending", 1),
        CAROL.user_id: ("reset", 2),
    }
    # The export and the live snapshot of one authenticator are the same but for their time.
    live = payment_uc.snapshot("AuthenticatorChanged", CAROL.user_id)
    [exported] = [i for i in items if i["id"] == CAROL.user_id]
    assert {k: v for k, v in exported.items() if k != "at"} == {k: v for k, v in live.items() if k != "at"}


# -- executing ------------------------------------------------------------------------


def test_a_good_code_starts_the_payment_and_sends_it_to_disbursement(
    payment_uc: Harness, desk: Desk, tom: Cashier
) -> None:
    rid = desk.payable()
    started = desk.pay(TOM, rid, tom.code())
    assert started["status"] == 201
    assert (started["body"]["state"], started["body"]["executions"], started["body"]["amount"]) == (
        "processing",
        1,
        kes(2_500),
    )
    assert payment_uc.emitted_types() == ["PaymentStarted", DISBURSE]
    payment_id = str(domain.payment_id_for(uuid.UUID(rid)))
    assert payment_uc.one("PaymentStarted") == {
        "requisition_id": rid,
        "payment_id": payment_id,
        "executor_id": TOM.user_id,
        "executor_name": "tom",
        "execution": 1,
    }
    assert payment_uc.one(DISBURSE) == {"payment_id": payment_id}
    assert payment_uc.snapshot("PaymentChanged", payment_id)["body"]["state"] == "processing"
    [spent] = payment_uc.scalars(select(OtpStepUse).where(OtpStepUse.purpose == "payment"))
    assert spent.time_step == domain.time_step(desk.clock.now)


def test_the_disbursement_pays_once_and_paid_is_final(payment_uc: Harness, desk: Desk, tom: Cashier) -> None:
    rid = desk.payable()
    desk.pay(TOM, rid, tom.code())
    assert desk.disburse(rid)["state"] == "completed"
    completed = payment_uc.one("PaymentCompleted")
    assert (completed["amount"], completed["provider"], completed["executor_id"]) == (kes(2_500), "cash", TOM.user_id)
    assert completed["provider_reference"].startswith("CASH-")
    assert desk.payment(rid).provider_reference == completed["provider_reference"]

    again = desk.refused(TOM, rid, tom.code())
    assert (again.code, again.status) == ("already-paid", 409)


def test_a_payment_under_way_is_not_started_twice(desk: Desk, tom: Cashier) -> None:
    rid = desk.payable()
    desk.pay(TOM, rid, tom.code())
    twice = desk.refused(TOM, rid, tom.code())
    assert (twice.code, twice.status) == ("payment-in-progress", 409)
    assert desk.payment(rid).executions == 1


# -- codes: spent once, counted when wrong, locked out after five ----------------------


def test_a_code_is_spent_once(payment_uc: Harness, desk: Desk, tom: Cashier) -> None:
    first, second = desk.payable(), desk.payable()
    code = tom.code()
    assert desk.pay(TOM, first, code)["status"] == 201
    reused = desk.pay(TOM, second, code)
    assert (reused["status"], reused["problem"]["type"], reused["problem"]["attempts_left"]) == (
        409,
        "otp-already-used",
        4,
    )
    assert desk.payment(second) is None
    assert payment_uc.emitted_types() == []


def test_five_wrong_codes_in_a_row_lock_the_user_out_for_fifteen_minutes(
    payment_uc: Harness, desk: Desk, tom: Cashier
) -> None:
    rid = desk.payable()
    answers = [desk.pay(TOM, rid, tom.wrong_code()) for _ in range(5)]
    assert [(a["status"], a["problem"]["type"]) for a in answers] == [(422, "otp-invalid")] * 4 + [
        (429, "otp-locked-out")
    ]
    assert [a["problem"]["attempts_left"] for a in answers[:4]] == [4, 3, 2, 1]
    guard = payment_uc.get(OtpGuard, TOM.user_id)
    assert guard.locked_until == desk.clock.now + timedelta(minutes=15)

    # Locked: even the right code is refused, without being checked or counted.
    locked = desk.refused(TOM, rid, tom.code())
    assert (locked.code, locked.status) == ("otp-locked-out", 429)
    assert 14 * 60 < locked.extra["retry_after"] <= 15 * 60
    assert desk.payment(rid) is None

    desk.clock.advance(minutes=15)
    assert desk.pay(TOM, rid, tom.code())["status"] == 201
    assert [reason for result, reason in desk.attempts(TOM) if result == "refused"] == ["otp-invalid"] * 4 + [
        "otp-locked-out"
    ] * 2


def test_a_good_code_resets_the_count_of_wrong_ones(payment_uc: Harness, desk: Desk, tom: Cashier) -> None:
    rid = desk.payable()
    for _ in range(4):
        assert desk.pay(TOM, rid, tom.wrong_code())["status"] == 422
    assert desk.pay(TOM, rid, tom.code())["status"] == 201
    assert payment_uc.get(OtpGuard, TOM.user_id).failures == 0


# -- who may pay, and what ------------------------------------------------------------


def test_neither_the_requester_nor_an_approver_pays(payment_uc: Harness, desk: Desk) -> None:
    asker = desk.cashier(an_actor("tina", "treasury", "staff"))
    approver = desk.cashier(an_actor("kim", "treasury", "branch_manager"))
    rid = desk.payable(requester=asker.actor, approvers=(BOB, approver.actor))
    for person, rule in ((asker, "requester-cannot-pay"), (approver, "approver-cannot-pay")):
        refused = desk.refused(person.actor, rid, person.code())
        assert (refused.code, refused.status, refused.extra["rule"]) == ("segregation-of-duties", 403, rule)
        assert desk.attempts(person.actor)[-1] == ("refused", "segregation-of-duties")
        # Refused for who they are: it does not count towards the lockout.
        assert payment_uc.get(OtpGuard, person.actor.user_id) is None
    staff = desk.refused(ALICE, rid, "123456")
    assert (staff.code, staff.status) == ("treasury-only", 403)
    assert desk.payment(rid) is None


def test_only_an_approved_reserved_live_requisition_is_paid(payment_uc: Harness, desk: Desk, tom: Cashier) -> None:
    unreserved = desk.payable(reserved=False)
    cancelled = desk.payable()
    desk.cancelled(cancelled)
    answers = {
        name: desk.refused(TOM, rid, tom.wrong_code())
        for name, rid in (("unknown", str(uuid.uuid4())), ("unreserved", unreserved), ("cancelled", cancelled))
    }
    assert {name: (r.code, r.status) for name, r in answers.items()} == {
        "unknown": ("not-found", 404),
        "unreserved": ("funds-not-reserved", 409),
        "cancelled": ("requisition-cancelled", 409),
    }
    assert payment_uc.get(OtpGuard, TOM.user_id) is None  # refused before any code was checked


def test_paying_needs_an_active_authenticator(desk: Desk) -> None:
    rid = desk.payable()
    assert desk.refused(TOM, rid, "123456").code == "otp-not-enrolled"
    pending = Cashier(TOM, desk.enrol(TOM), desk.clock)
    refused = desk.refused(TOM, rid, pending.code())
    assert (refused.code, refused.status) == ("otp-not-enrolled", 409)


# -- disbursement failures and retries ------------------------------------------------


def test_a_failed_execution_is_retried_with_a_fresh_code_until_none_is_left(
    payment_uc: Harness, desk: Desk, tom: Cashier
) -> None:
    rid = desk.payable(payee=bank_payee("FAIL-PERMANENT"))
    for execution, left in ((1, 2), (2, 1), (3, 0)):
        started = desk.pay(TOM, rid, tom.code())
        assert (started["status"], started["body"]["executions"]) == (201, execution)
        assert payment_uc.one("PaymentStarted")["execution"] == execution
        assert desk.disburse(rid)["state"] == "failed"
        failed = payment_uc.one("PaymentFailed")
        assert (failed["final"], failed["executions_left"]) == (left == 0, left)
        alert = payment_uc.one("AlertRaised")
        assert (alert["kind"], alert["severity"], alert["requisition_id"]) == ("payment_failed", "critical", rid)
        assert alert["subject"].startswith("payment:")  # each execution's failure folds into one alert
    blocked = desk.refused(TOM, rid, tom.code())
    assert (blocked.code, blocked.status) == ("execution-limit-reached", 422)
    calls = payment_uc.scalars(select(ProviderAttempt).order_by(ProviderAttempt.id))
    assert [(c.execution, c.outcome) for c in calls] == [(1, "permanent"), (2, "permanent"), (3, "permanent")]


def test_transient_errors_are_retried_three_times_then_a_fresh_execution_pays(
    payment_uc: Harness, desk: Desk, tom: Cashier
) -> None:
    # The bank fails the first four calls: one call and three retries is all an execution gets.
    rid = desk.payable(payee=bank_payee("0123-FAIL-TRANSIENT-4"))
    desk.pay(TOM, rid, tom.code())
    for calls in (1, 2, 3):
        with pytest.raises(RetryLater):
            desk.disburse(rid)
        waiting = desk.payment(rid)
        assert (waiting.state, waiting.attempts, waiting.next_attempt_at is not None) == ("processing", calls, True)
        assert payment_uc.emitted_types() == []
        desk.clock.advance(seconds=desk.config.retry.cap_seconds)  # the retry is due
    assert desk.disburse(rid)["state"] == "failed"
    failed = payment_uc.one("PaymentFailed")
    assert (failed["final"], failed["executions_left"]) == (False, 2)
    assert failed["reason"].endswith("(gave up after 4 calls)")

    assert desk.pay(TOM, rid, tom.code())["body"]["executions"] == 2
    assert desk.disburse(rid)["state"] == "completed"
    assert payment_uc.one("PaymentCompleted")["provider"] == "bank"
    calls = payment_uc.scalars(select(ProviderAttempt).order_by(ProviderAttempt.id))
    assert [(c.execution, c.outcome) for c in calls] == [(1, "transient")] * 4 + [(2, "paid")]


def test_a_requisition_cancelled_before_the_provider_was_called_is_not_paid(
    payment_uc: Harness, desk: Desk, tom: Cashier
) -> None:
    rid = desk.payable()
    desk.pay(TOM, rid, tom.code())
    desk.cancelled(rid)
    assert desk.disburse(rid)["state"] == "failed"
    failed = payment_uc.one("PaymentFailed")
    assert (failed["final"], failed["reason"]) == (True, "The requisition was cancelled.")
    assert payment_uc.scalars(select(ProviderAttempt)) == []


def test_repeated_wrong_codes_raise_one_alert_per_user_and_the_lockout_a_critical_one(
    payment_uc: Harness, desk: Desk, tom: Cashier
) -> None:
    raised = []
    for _ in range(5):
        desk.sign_in(TOM, tom.wrong_code())
        raised.append([(a.payload["kind"], a.payload["severity"]) for a in payment_uc.emitted("AlertRaised")])
    assert raised == [
        [],
        [],
        [("otp_failures", "warning")],
        [("otp_failures", "warning")],
        [("otp_failures", "critical")],
    ]
    assert {a.payload["subject"] for a in payment_uc.emitted("AlertRaised")} == {f"user:{TOM.user_id}"}


def test_a_time_step_is_spent_once_and_the_second_taker_is_told(payment_uc: Harness) -> None:
    now = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    with payment_uc.session() as session:
        first = service.take_step(session, TOM.user_id, 59_000_000, now, purpose="payment")
        again = service.take_step(session, TOM.user_id, 59_000_000, now, purpose="sign-in")
        other = service.take_step(session, TOM.user_id, 59_000_001, now, purpose="payment-run")
        spent = session.scalars(select(OtpStepUse).where(OtpStepUse.user_id == TOM.user_id)).all()
    assert (first, again, other) == (True, False, True)
    assert sorted((s.time_step, s.purpose) for s in spent) == [(59_000_000, "payment"), (59_000_001, "payment-run")]
