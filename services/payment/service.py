"""Payment use cases; each runs inside the unit of work its task adapter opened.

The disbursement job is the exception the runtime allows for: it opens its own
transactions, because a provider call sits between reading the payment and recording what
the provider said, and a retry must be scheduled only after that record is committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.payment import domain
from services.payment.domain import Outcome, PaymentState
from services.payment.models import (
    OtpAttempt,
    OtpEnrolment,
    OtpGuard,
    OtpStepUse,
    PayableRequisition,
    Payment,
    PaymentExecution,
    ProviderAttempt,
)
from services.payment.providers import (
    Disbursement,
    PermanentProviderError,
    ProviderSettings,
    TransientProviderError,
)
from services.payment.schemas import authenticator_body, enrolment_body, enrolment_secret_body, payment_body
from shared.config import ConfigError, Settings
from shared.contracts.catalog import (
    ALERT_CLEARED,
    ALERT_RAISED,
    DISBURSE_PAYMENT,
    PAYMENT_COMPLETED,
    PAYMENT_FAILED,
    PAYMENT_STARTED,
)
from shared.contracts.envelope import Actor, Envelope
from shared.contracts.money import Money
from shared.contracts.payment import seal_enrolment
from shared.db import upsert
from shared.db.engine import Database
from shared.db.types import utcnow
from shared.db.uow import UnitOfWork
from shared.messaging.errors import Conflict, DomainError, Forbidden, NotFound, ok_reply, problem_reply
from shared.messaging.runtime import RetryLater

# An enrolment's statuses (``shared.contracts.readmodels.AUTHENTICATOR_STATUSES``): pending until a
# first code activates it; reset when it was forgotten (its secret gone) and a new one is due.
PENDING = "pending"
ACTIVE = "active"
RESET = "reset"


@dataclass(frozen=True)
class PaymentConfig:
    """What the payment use cases need from the settings, checked once at start-up."""

    otp_key: str
    max_executions: int
    retry: domain.RetryPolicy
    providers: ProviderSettings
    # A payment run above this total (minor units) needs a second treasury officer.
    run_dual_above_minor: int = 500_000
    # How many of a run's payments one disbursement job takes, and how many of its provider
    # calls it makes at once (each on a connection of its own).
    batch_size: int = 10
    calls_at_once: int = 8
    clock: Callable[[], datetime] = field(default=utcnow)

    @property
    def call_lease(self) -> timedelta:
        """How long a job run may take over one provider call before another run may step in."""
        return domain.PROVIDER_CALL_LEASE + 2 * timedelta(milliseconds=self.providers.latency_ms)

    @classmethod
    def from_settings(cls, settings: Settings) -> PaymentConfig:
        """Build and validate the configuration; ConfigError stops the worker before it serves."""
        try:
            Fernet(settings.otp_encryption_key.encode())
        except ValueError:
            raise ConfigError("PETTYCASH_OTP_ENCRYPTION_KEY must be a Fernet key (32 url-safe base64 bytes)") from None
        if not 1 <= settings.payment_batch_size <= 200:
            raise ConfigError("PETTYCASH_PAYMENT_BATCH_SIZE must be from 1 to 200")
        visibility = settings.broker_transport_options.get("visibility_timeout")
        retry = domain.RetryPolicy(
            max_retries=settings.payment_max_retries,
            base_seconds=settings.payment_retry_base_seconds,
            cap_seconds=domain.retry_cap_seconds(float(visibility) if isinstance(visibility, int | float) else None),
        )
        return cls(
            otp_key=settings.otp_encryption_key,
            max_executions=settings.payment_max_executions,
            retry=retry,
            run_dual_above_minor=settings.payment_run_dual_above_minor,
            batch_size=settings.payment_batch_size,
            providers=ProviderSettings.parse(
                settings.provider_faults, settings.provider_latency_ms, markers=settings.faults_allowed
            ),
        )


# -- helpers --------------------------------------------------------------------------

# A refusal is raised as the exception its status has always been raised as.
_ERRORS_BY_STATUS: dict[int, type[DomainError]] = {403: Forbidden, 404: NotFound, 409: Conflict}


def error_of(problem: domain.Problem) -> DomainError:
    """The exception that refuses a request with ``problem`` (the command's effects roll back)."""
    kind = _ERRORS_BY_STATUS.get(problem.status, DomainError)
    return kind(problem.detail, code=problem.code, status=problem.status, **problem.extensions)


def _seal(key: str, secret: str) -> str:
    return Fernet(key.encode()).encrypt(secret.encode()).decode()


def _readable_secret(key: str, sealed: str) -> str | None:
    """The secret, or None when ``key`` cannot open it (the key changed without re-sealing)."""
    try:
        return Fernet(key.encode()).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None


def _unseal(key: str, sealed: str) -> str:
    secret = _readable_secret(key, sealed)
    if secret is None:
        # The key changed without re-sealing: refuse plainly rather than fail every code.
        raise error_of(domain.UNREADABLE.problem)
    return secret


def _require_second_factor_role(actor: Actor) -> None:
    refusal = domain.second_factor_refusal(actor)
    if refusal is not None:
        raise error_of(refusal.problem)


def locked_guard(session: Session, user_id: str, now: datetime) -> OtpGuard:
    """The user's guard row, locked: one user's codes (paying, signing in) are checked one after the
    other, so a burst of guesses cannot slip past the count while an earlier one is still being checked."""
    guard = session.get(OtpGuard, user_id, with_for_update=True, populate_existing=True)
    if guard is not None:  # the user's first code made it: one statement from then on
        return guard
    session.execute(
        upsert.insert(session, OtpGuard)
        .values(user_id=user_id, failures=0, locked_until=None, updated_at=now)
        .on_conflict_do_nothing()
    )
    return session.get_one(OtpGuard, user_id, with_for_update=True, populate_existing=True)


def record_attempt(
    session: Session,
    envelope: Envelope,
    action: str,
    requisition_id: uuid.UUID | None,
    result: str,
    reason: str,
    detail: str = "",
    step: int | None = None,
) -> None:
    session.add(
        OtpAttempt(
            user_id=envelope.actor.user_id,
            username=envelope.actor.username,
            action=action,
            requisition_id=requisition_id,
            result=result,
            reason=reason,
            detail=detail,
            time_step=step,
            message_id=uuid.UUID(envelope.message_id),
            at=utcnow(),
        )
    )


def _used_steps(session: Session, user_id: str, now: datetime) -> frozenset[int]:
    """The time steps a code may belong to at ``now`` that the user already spent."""
    window = list(domain.window_steps(now))
    return frozenset(
        session.scalars(
            select(OtpStepUse.time_step).where(OtpStepUse.user_id == user_id, OtpStepUse.time_step.in_(window))
        )
    )


def take_step(session: Session, user_id: str, step: int, now: datetime, **use: Any) -> bool:
    """Spend a time step; False when a concurrent twin spent it first."""
    # The primary key (user_id, time_step) is the guard against a concurrent twin: the second
    # insert waits for the first transaction and, once it commits, inserts nothing (one
    # statement, where a savepoint around a plain insert took three).
    taken = session.execute(
        upsert.insert(session, OtpStepUse)
        .values(user_id=user_id, time_step=step, used_at=now, **use)
        .on_conflict_do_nothing()
        .returning(OtpStepUse.time_step)
    )
    return taken.first() is not None


def _spend_step(
    session: Session, config: PaymentConfig, enrolment: OtpEnrolment, code: str, now: datetime, **use: Any
) -> domain.OtpCheck:
    """Check a code and, if good, spend its time step; the check says why not otherwise."""
    secret = _unseal(config.otp_key, enrolment.sealed_secret)
    check = domain.check_code(secret, code, now, _used_steps(session, enrolment.user_id, now))
    if check.step is None:
        return check
    if not take_step(session, enrolment.user_id, check.step, now, **use):
        return domain.OtpCheck(None, domain.OtpRejection.REUSED)
    return check


# -- OTP enrolment --------------------------------------------------------------------


def enroll_otp(
    uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], *, config: PaymentConfig
) -> dict[str, Any]:
    """Give a second-factor user a fresh TOTP secret, shown once (sealed for the gateway), to activate."""
    actor = envelope.actor
    _require_second_factor_role(actor)
    session = uow.session
    session.execute(
        upsert.insert(session, OtpEnrolment)
        .values(
            user_id=actor.user_id,
            username=actor.username,
            sealed_secret="",
            status=PENDING,
            created_at=config.clock(),
        )
        .on_conflict_do_nothing()
    )
    enrolment = session.get_one(OtpEnrolment, actor.user_id, with_for_update=True, populate_existing=True)
    if enrolment.status == ACTIVE:
        raise Conflict(
            "You already have an active authenticator; reset it (or ask an administrator to) first.",
            code="otp-already-enrolled",
        )
    # A pending enrolment is replaced (its secret was shown once and may have been lost), and so
    # is one that was reset.
    secret = domain.new_otp_secret()
    enrolment.sealed_secret = _seal(config.otp_key, secret)
    enrolment.username = actor.username
    enrolment.status = PENDING
    enrolment.created_at = config.clock()
    enrolment.activated_at = None
    body = enrolment_body(enrolment)
    body["sealed"] = seal_enrolment(
        config.otp_key, enrolment_secret_body(domain.provisioning_uri(secret, actor.username))
    )
    return ok_reply(201, body)


def activate_otp(
    uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], *, config: PaymentConfig
) -> dict[str, Any]:
    """Activate a pending enrolment with a first valid code (proof the authenticator works)."""
    actor = envelope.actor
    _require_second_factor_role(actor)
    session = uow.session
    enrolment = session.get(OtpEnrolment, actor.user_id, with_for_update=True)
    if enrolment is None or enrolment.status == RESET or not enrolment.sealed_secret:
        raise Conflict("Enrol an authenticator first.", code="otp-not-enrolled")
    if enrolment.status == ACTIVE:
        raise Conflict("Your authenticator is already active.", code="otp-already-active")
    now = config.clock()
    check = _spend_step(session, config, enrolment, payload["code"], now, purpose="activation")
    if not check.accepted:
        problem = domain.rejected_code_problem(check.rejection)
        raise DomainError(problem.detail, code=problem.code, status=problem.status)
    enrolment.status = ACTIVE
    enrolment.activated_at = now
    record_attempt(session, envelope, "activate", None, "accepted", "ok", step=check.step)
    return ok_reply(200, enrolment_body(enrolment))


def record_refused_activation(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], exc: DomainError) -> None:
    """Keep a refused activation in the audit trail (the refusal itself rolled back)."""
    record_attempt(uow.session, envelope, "activate", None, "refused", exc.code, exc.detail)


# -- the second factor at sign-in, and resetting an authenticator ----------------------

SIGN_IN = "sign-in"
RESET_ACTION = "reset"


def verify_second_factor(
    uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], *, config: PaymentConfig
) -> dict[str, Any]:
    """Check the code of a user signing in, as a payment's is: one budget of wrong codes for both.

    Decide, then do (:func:`domain.decide_sign_in`): a refusal is raised (nothing kept); a wrong
    or spent code is counted and answered (kept); a good code's step is spent.
    """
    session = uow.session
    actor = envelope.actor
    now = config.clock()
    # The guard first, locked, as paying takes it: a user's codes are checked one at a time.
    guard = locked_guard(session, actor.user_id, now)
    facts = domain.SignInFacts(
        actor=actor,
        guard=domain.Guard(guard.failures, guard.locked_until),
        authenticator=authenticator_facts(session, session.get(OtpEnrolment, actor.user_id), now, config),
        code=payload["code"],
        now=now,
    )
    decision = domain.decide_sign_in(facts)
    if isinstance(decision, domain.Refusal):
        raise error_of(decision.problem)
    if isinstance(decision, domain.CodeRefused):
        return refuse_code(uow, envelope, guard, decision, now, None, SIGN_IN)
    if not take_step(session, actor.user_id, decision.step, now, purpose=SIGN_IN):
        # A concurrent request (a sign-in or a payment) spent this step first: reused after all.
        return refuse_code(uow, envelope, guard, decision.if_step_taken, now, None, SIGN_IN)
    if decision.clear_failures:
        guard.failures = 0
        guard.updated_at = now
    record_attempt(session, envelope, SIGN_IN, None, "accepted", "ok", step=decision.step)
    return ok_reply(200, {"user_id": actor.user_id, "verified": True})


def record_refused_sign_in(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], exc: DomainError) -> None:
    """Keep a refused sign-in code in the audit trail (wrong codes are recorded by the use case)."""
    record_attempt(uow.session, envelope, SIGN_IN, None, "refused", exc.code, exc.detail)


def reset_authenticator(
    uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], *, config: PaymentConfig
) -> dict[str, Any]:
    """Forget a user's authenticator (an administrator, or the user after a step-up): they enrol anew.

    The secret is emptied and the run of wrong codes cleared. A lock that is running stays until
    it runs out: a reset must not be a way round a lockout (the new secret is enrolled and
    activated meanwhile).
    """
    session = uow.session
    user_id = payload["user_id"]
    now = config.clock()
    # The guard first, locked, as paying and signing in take it before they read the enrolment: a
    # code being checked finishes before the reset, and one checked after it finds no authenticator.
    guard = locked_guard(session, user_id, now)
    enrolment = session.get(OtpEnrolment, user_id, with_for_update=True)
    refusal = domain.reset_refusal(envelope.actor, user_id, enrolled=enrolment is not None)
    if refusal is not None or enrolment is None:
        # reset_refusal refuses a user without an enrolment, so ``refusal`` is set whenever this raises.
        raise error_of((refusal or domain.NO_AUTHENTICATOR).problem)
    enrolment.status = RESET
    enrolment.sealed_secret = ""
    enrolment.activated_at = None
    if guard.failures:
        guard.failures = 0
        guard.updated_at = now
    record_attempt(session, envelope, RESET_ACTION, None, "accepted", "ok", _reset_detail(user_id))
    return ok_reply(200, enrolment_body(enrolment))


def _reset_detail(user_id: str) -> str:
    """The audit row of a reset names whose authenticator it was (the row's user is who asked)."""
    return f"authenticator of {user_id}"


def record_refused_reset(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], exc: DomainError) -> None:
    """Keep a refused reset in the audit trail (the refusal itself rolled back)."""
    detail = f"{exc.detail} ({_reset_detail(payload['user_id'])})"
    record_attempt(uow.session, envelope, RESET_ACTION, None, "refused", exc.code, detail)


# -- execution ------------------------------------------------------------------------


@dataclass(frozen=True)
class _ExecutionRows:
    """The rows an execution is decided on and changes."""

    guard: OtpGuard
    requisition: PayableRequisition | None
    payment: Payment | None
    enrolment: OtpEnrolment | None


def execute_payment(
    uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], *, config: PaymentConfig
) -> dict[str, Any]:
    """Start paying a reserved requisition: who may, with a fresh code, then hand it to the job.

    Decide, then do: the rules are :func:`domain.decide_execution`'s, applied to the facts of
    the rows loaded here. A refusal is raised (nothing is kept); a wrong or spent code is
    counted and answered (kept); a good code is spent and the execution starts.
    """
    session = uow.session
    now = config.clock()
    requisition_id = payload["requisition_id"]
    rows = _load_execution_rows(session, envelope.actor.user_id, requisition_id, now)
    decision = domain.decide_execution(_execution_facts(session, rows, envelope.actor, payload["otp"], now, config))
    if isinstance(decision, domain.Refusal):
        raise error_of(decision.problem)
    if isinstance(decision, domain.CodeRefused):
        return refuse_code(uow, envelope, rows.guard, decision, now, requisition_id)
    return _start_execution(uow, envelope, rows, decision, requisition_id, now, config)


def _load_execution_rows(session: Session, user_id: str, requisition_id: uuid.UUID, now: datetime) -> _ExecutionRows:
    """Lock the executor's guard, the requisition and its payment, in that order; read the enrolment.

    All of them, whatever the decision will be: a refused request rolls back, releasing them.
    """
    guard = locked_guard(session, user_id, now)
    # Locked for the whole use case: two executions of one requisition run one after the other.
    requisition = session.get(PayableRequisition, requisition_id, with_for_update=True)
    payment = session.get(Payment, domain.payment_id_for(requisition_id), with_for_update=True)
    return _ExecutionRows(guard, requisition, payment, session.get(OtpEnrolment, user_id))


def _execution_facts(
    session: Session, rows: _ExecutionRows, actor: Actor, code: str, now: datetime, config: PaymentConfig
) -> domain.ExecutionFacts:
    """What the rows say, as plain values for :func:`domain.decide_execution`."""
    payment = rows.payment
    return domain.ExecutionFacts(
        executor=actor,
        guard=domain.Guard(rows.guard.failures, rows.guard.locked_until),
        requisition=payable_facts(rows.requisition),
        payment=None if payment is None else domain.PaymentFacts(payment.state, payment.executions),
        authenticator=authenticator_facts(session, rows.enrolment, now, config),
        code=code,
        now=now,
        max_executions=config.max_executions,
    )


def payable_facts(req: PayableRequisition | Any | None) -> domain.PayableFacts | None:
    """What the read model knows of the requisition, from its row or its object (None: nothing
    about it arrived yet)."""
    if req is None:
        return None
    return domain.PayableFacts(
        approved=req.approved_at is not None,
        cancelled=req.cancelled_at is not None,
        reserved=req.reserved_at is not None,
        requester_id=req.requester_id or "",
        approver_ids=tuple(req.approver_ids or ()),
        payee_method=req.payee_method,
        amount_minor=req.amount_minor,
        currency=req.currency,
    )


def authenticator_facts(
    session: Session, enrolment: OtpEnrolment | None, now: datetime, config: PaymentConfig
) -> domain.AuthenticatorFacts | None:
    """The executor's enrolment: active or not, its secret if readable, the steps near ``now`` spent."""
    if enrolment is None:
        return None
    return domain.AuthenticatorFacts(
        active=enrolment.status == ACTIVE,
        secret=_readable_secret(config.otp_key, enrolment.sealed_secret),
        used_steps=_used_steps(session, enrolment.user_id, now),
    )


def refuse_code(
    uow: UnitOfWork,
    envelope: Envelope,
    guard_row: OtpGuard,
    refused: domain.CodeRefused,
    now: datetime,
    requisition_id: uuid.UUID | None,
    action: str = "execute",
) -> dict[str, Any]:
    """Count a wrong or spent code and answer with the problem.

    The failure is an outcome with effects (the count, the audit row), committed with the
    command's transaction while the guard row is still locked; not a refusal rolled back.
    """
    session = uow.session
    newly_locked = refused.guard.locked_until is not None and refused.guard.locked_until != guard_row.locked_until
    guard_row.failures = refused.guard.failures
    guard_row.locked_until = refused.guard.locked_until
    guard_row.updated_at = now
    _alert_repeated_failures(uow, envelope, refused.guard.failures, newly_locked)
    problem = refused.problem
    record_attempt(session, envelope, action, requisition_id, "refused", problem.code, problem.detail)
    return problem_reply(problem.status, problem.code, problem.detail, **problem.extensions)


# From this many wrong codes in a row, an alert says so (the fifth locks the user out).
REPEATED_FAILURES = 3


def _alert_repeated_failures(uow: UnitOfWork, envelope: Envelope, failures: int, locked: bool) -> None:
    """Wrong codes in a row are worth a look (someone guessing, or a clock gone wrong): one
    alert per user, folding each further one into it."""
    if not locked and failures < REPEATED_FAILURES:
        return
    who = envelope.actor.username
    message = (
        f"{who} is locked out of one-time codes after repeated wrong codes."
        if locked
        else f"{who} entered {failures} wrong one-time codes in a row."
    )
    alert = {
        "kind": "otp_failures",
        "severity": "critical" if locked else "warning",
        "message": message,
        "subject": f"user:{envelope.actor.user_id}",
        "source": "payment",
    }
    uow.emit(envelope.caused(ALERT_RAISED.name, alert))


def _start_execution(
    uow: UnitOfWork,
    envelope: Envelope,
    rows: _ExecutionRows,
    start: domain.StartExecution,
    requisition_id: uuid.UUID,
    now: datetime,
    config: PaymentConfig,
) -> dict[str, Any]:
    """Spend the code's step, start the execution and send the payment to the disbursement job."""
    session = uow.session
    actor = envelope.actor
    if not take_step(session, actor.user_id, start.step, now, purpose="payment", requisition_id=requisition_id):
        # A concurrent request spent this step first: the code counts as reused after all.
        return refuse_code(uow, envelope, rows.guard, start.if_step_taken, now, requisition_id)
    if start.clear_failures:
        rows.guard.failures = 0
        rows.guard.updated_at = now
    record_attempt(session, envelope, "execute", requisition_id, "accepted", "ok", step=start.step)
    payment = executed_payment(session, rows.payment, rows.requisition, start.number, start.state, actor, now)
    session.flush()
    send_to_disbursement(uow, envelope, payment)
    return ok_reply(201, payment_body(payment, config.max_executions))


def send_to_disbursement(uow: UnitOfWork, envelope: Envelope, payment: Payment) -> None:
    """Say the execution started, and send the payment to the disbursement job."""
    say_started(uow, envelope, payment)
    # The job is sent through the outbox: it runs only once this transaction has committed.
    uow.emit(envelope.caused(DISBURSE_PAYMENT.name, {"payment_id": str(payment.id)}))


def say_started(uow: UnitOfWork, envelope: Envelope, payment: Payment | dict[str, Any]) -> None:
    """Say a payment's execution started (``payment``: the row, or its columns as a run inserts them)."""
    row = payment if isinstance(payment, dict) else {c: getattr(payment, c) for c in STARTED_COLUMNS}
    uow.emit(
        envelope.caused(
            PAYMENT_STARTED.name,
            {
                "requisition_id": str(row["requisition_id"]),
                "payment_id": str(row["id"]),
                "executor_id": row["executor_id"],
                "executor_name": row["executor_name"],
                "execution": row["executions"],
            },
        )
    )


STARTED_COLUMNS = ("id", "requisition_id", "executor_id", "executor_name", "executions")


def new_payment_row(req: PayableRequisition, actor: Actor, now: datetime) -> dict[str, Any]:
    """A requisition's payment as its first execution creates it (the decision saw amount and payee)."""
    return {
        "id": domain.payment_id_for(req.requisition_id),
        "requisition_id": req.requisition_id,
        "branch_id": req.branch_id or "",
        "region_id": req.region_id or "",
        "amount_minor": req.amount_minor,
        "currency": req.currency,
        "payee_name": req.payee_name or "",
        "payee_method": req.payee_method,
        "payee_account_ref": req.payee_account_ref or "",
        "state": PaymentState.PROCESSING,
        "executions": 0,
        "attempts": 0,
        "executor_id": actor.user_id,
        "executor_name": actor.username,
        "redrives": 0,
        "created_at": now,
        "updated_at": now,
    }


def execution_row(
    payment_id: uuid.UUID, number: int, actor: Actor, now: datetime, run_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """Execution ``number`` of a payment, started now by ``actor`` (within run ``run_id``, if one)."""
    return {
        "payment_id": payment_id,
        "number": number,
        "executor_id": actor.user_id,
        "executor_name": actor.username,
        "started_at": now,
        "outcome": PaymentState.PROCESSING,
        "reason": "",
        "run_id": run_id,
    }


def executed_payment(
    session: Session,
    payment: Payment | None,
    requisition: PayableRequisition | None,
    number: int,
    state: PaymentState,
    actor: Actor,
    now: datetime,
) -> Payment:
    """The payment, created (from ``requisition``) or moved to ``state``, with execution
    ``number`` recorded; the caller flushes."""
    if payment is None:
        if requisition is None:
            raise ValueError("a first execution needs the requisition it pays")
        payment = Payment(**new_payment_row(requisition, actor, now))
        session.add(payment)
    restarted(payment, state, number, actor, now)
    session.add(PaymentExecution(**execution_row(payment.id, number, actor, now)))
    return payment


def restarted(payment: Payment, state: PaymentState, number: int, actor: Actor, now: datetime) -> None:
    """A payment moved to ``state`` by execution ``number`` (a new one, or a failed one again)."""
    payment.state = state
    payment.executions = number
    payment.attempts = 0
    payment.executor_id = actor.user_id
    payment.executor_name = actor.username
    payment.last_error = None
    payment.next_attempt_at = None
    payment.call_claim = None
    payment.call_claimed_until = None
    payment.updated_at = now


def record_refused_execution(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], exc: DomainError) -> None:
    """Keep a refused execution in the audit trail (wrong codes are recorded by the use case).

    Runs after the refused command rolled back, in the transaction that records the refusal,
    so the attempt is not lost with it.
    """
    record_attempt(uow.session, envelope, "execute", payload.get("requisition_id"), "refused", exc.code, exc.detail)


def record_refused_run(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], exc: DomainError) -> None:
    """Keep a refused payment run (or its refused second authorisation) in the audit trail."""
    run = payload.get("run_id")
    record_attempt(
        uow.session, envelope, "run", None, "refused", exc.code, f"run {run}: {exc.detail}" if run else exc.detail
    )


# -- disbursement ---------------------------------------------------------------------


@dataclass(frozen=True)
class CallClaim:
    """A job run's lease on the next provider call of a payment."""

    token: uuid.UUID
    order: Disbursement
    payee_method: str


@dataclass(frozen=True)
class ProviderCall:
    """What one provider call came to: paid (its reference), or a transient or permanent error."""

    provider: str
    outcome: Outcome
    detail: str
    reference: str = ""


def disburse_payment(
    db: Database, envelope: Envelope, payload: dict[str, Any], *, config: PaymentConfig
) -> dict[str, Any]:
    """Call the provider for a processing payment; record the outcome; retry, complete or fail.

    Three short transactions, none open during the provider call (the provider commits on
    its own, and on SQLite a second writer would wait on ours): claim the call, make it,
    record what it came to. Safe to run more than once for one payment (a redelivery, a
    re-drive): a run that finds the call claimed, or the next retry not due, waits for it;
    one that finds the payment no longer processing does nothing; and the provider never
    pays one payment id twice.
    """
    payment_id = payload["payment_id"]
    claim = _claim_call(db, envelope, payment_id, config)
    if not isinstance(claim, CallClaim):
        return claim
    retry_in, state = _record_call(db, envelope, claim, call_provider(db, claim, config), config)
    if retry_in is not None:
        raise RetryLater(retry_in, f"payment {payment_id}: next provider call")
    return {"payment_id": str(payment_id), "state": state}


def call_provider(db: Database, claim: CallClaim, config: PaymentConfig) -> ProviderCall:
    """Ask the payee's provider to pay the claimed order (the payment id is its idempotency key)."""
    provider = config.providers.for_payee(claim.payee_method, claim.order.account_ref, db)
    try:
        reference = provider.disburse(claim.order).reference
    except TransientProviderError as exc:
        return ProviderCall(provider.name, Outcome.TRANSIENT, str(exc))
    except PermanentProviderError as exc:
        return ProviderCall(provider.name, Outcome.PERMANENT, str(exc))
    return ProviderCall(provider.name, Outcome.PAID, reference, reference)


def locked_payments(session: Session, payment_ids: Sequence[uuid.UUID]) -> list[Payment]:
    """These payments, locked in id order (the order every use case locks them in)."""
    return list(
        session.scalars(
            select(Payment).where(Payment.id.in_(sorted(set(payment_ids)))).order_by(Payment.id).with_for_update()
        )
    )


def _claim_call(
    db: Database, envelope: Envelope, payment_id: uuid.UUID, config: PaymentConfig
) -> CallClaim | dict[str, Any]:
    """Lease the next provider call, or say why there is none to make (RetryLater: not yet)."""
    with db.uow() as uow:
        payments = locked_payments(uow.session, [payment_id])
        if not payments:
            return {"payment_id": str(payment_id), "skipped": "unknown payment"}
        claim = claim_locked(uow, envelope, payments[0], config)
        uow.commit()
        return claim


def claim_locked(
    uow: UnitOfWork, envelope: Envelope, payment: Payment, config: PaymentConfig
) -> CallClaim | dict[str, Any]:
    """Lease the next provider call of a locked payment, or say why there is none to make
    (raises RetryLater, changing nothing, when it is not time yet); the caller commits."""
    payment_id = payment.id
    if payment.state != PaymentState.PROCESSING:
        return {"payment_id": str(payment_id), "state": payment.state}
    now = config.clock()
    if payment.next_attempt_at is not None and payment.next_attempt_at > now:
        # Early (a duplicate message): wait for the retry's time rather than spend a retry.
        raise RetryLater((payment.next_attempt_at - now).total_seconds(), "retry not due yet")
    if payment.call_claimed_until is not None and payment.call_claimed_until > now:
        # Another run is calling the provider; if it died, its lease runs out and we go.
        # Look again soon, within the retry cap, so no countdown nears the visibility timeout.
        wait = min((payment.call_claimed_until - now).total_seconds(), config.retry.cap_seconds)
        raise RetryLater(wait, "provider call in flight")
    req = uow.session.get(PayableRequisition, payment.requisition_id)
    if req is not None and req.cancelled_at is not None and payment.attempts == 0:
        # Cancelled while the execution was on its way and the provider was not called
        # yet: stop here, so the ledger's voided hold is never paid out.
        _fail_execution(uow, envelope, payment, config, "The requisition was cancelled.", final=True)
        return {"payment_id": str(payment_id), "state": payment.state}
    claim = CallClaim(
        token=uuid.uuid4(),
        order=Disbursement(
            payment_id=payment.id,
            amount=Money(payment.currency, payment.amount_minor),
            payee_name=payment.payee_name,
            account_ref=payment.payee_account_ref,
        ),
        payee_method=payment.payee_method,
    )
    payment.call_claim = claim.token
    payment.call_claimed_until = now + config.call_lease
    payment.updated_at = now
    return claim


def _record_call(
    db: Database, envelope: Envelope, claim: CallClaim, call: ProviderCall, config: PaymentConfig
) -> tuple[float | None, str]:
    """Record a provider call and what follows from it; returns the retry delay (if any) and the state."""
    with db.uow() as uow:
        payment = locked_payments(uow.session, [claim.order.payment_id])[0]
        retry_in = record_locked(uow, envelope, payment, claim, call, config)
        uow.commit()
        return retry_in, str(payment.state)


def record_locked(
    uow: UnitOfWork, envelope: Envelope, payment: Payment, claim: CallClaim, call: ProviderCall, config: PaymentConfig
) -> float | None:
    """Record a provider call on its locked payment and what follows from it (complete, fail, or
    the delay of the next call, which is returned); the caller commits."""
    now = config.clock()
    mine = payment.call_claim == claim.token and payment.state == PaymentState.PROCESSING
    if mine:
        payment.attempts += 1
        payment.call_claim = None
        payment.call_claimed_until = None
    uow.session.add(
        ProviderAttempt(
            payment_id=payment.id,
            execution=payment.executions,
            number=payment.attempts,
            provider=call.provider,
            outcome=call.outcome,
            detail=call.detail if mine else f"{call.detail} (late: this call's lease had run out)",
            at=now,
        )
    )
    payment.provider = call.provider
    payment.updated_at = now
    return _follow_call(uow, envelope, payment, call, mine=mine, now=now, config=config)


def _follow_call(
    uow: UnitOfWork,
    envelope: Envelope,
    payment: Payment,
    call: ProviderCall,
    *,
    mine: bool,
    now: datetime,
    config: PaymentConfig,
) -> float | None:
    """Complete, schedule a retry (its delay is returned) or fail the execution after a call.

    A call whose lease had run out (not ``mine``) changes nothing unless it paid.
    """
    outcome, detail = call.outcome, call.detail
    if outcome == Outcome.PAID and payment.state == PaymentState.PROCESSING:
        # Money went out: record it even from a call whose lease ran out, since a later
        # call with the same key gets this very payment back and finds it completed.
        _complete(uow, envelope, payment, call.reference, now)
        return None
    if not mine:
        return None
    if config.retry.next_step(outcome, payment.attempts) == domain.Next.RETRY:
        retry_in = config.retry.delay(payment.attempts)
        payment.last_error = detail
        payment.next_attempt_at = now + timedelta(seconds=retry_in)
        return retry_in
    if outcome == Outcome.TRANSIENT:
        detail = f"{detail} (gave up after {payment.attempts} calls)"
    _fail_execution(uow, envelope, payment, config, detail)
    return None


def _current_execution(session: Session, payment: Payment) -> PaymentExecution | None:
    return session.scalar(
        select(PaymentExecution).where(
            PaymentExecution.payment_id == payment.id, PaymentExecution.number == payment.executions
        )
    )


def _complete(uow: UnitOfWork, envelope: Envelope, payment: Payment, reference: str, now: datetime) -> None:
    payment.state = domain.transition(payment.state, PaymentState.COMPLETED)
    payment.provider_reference = reference
    payment.completed_at = now
    payment.last_error = None
    payment.next_attempt_at = None
    payment.call_claim = None
    payment.call_claimed_until = None
    execution = _current_execution(uow.session, payment)
    if execution is not None:
        execution.outcome = PaymentState.COMPLETED
        execution.finished_at = now
    _clear_alerts(uow, envelope, payment, f"Paid on execution {payment.executions} (reference {reference}).")
    uow.emit(
        envelope.caused(
            PAYMENT_COMPLETED.name,
            {
                "requisition_id": str(payment.requisition_id),
                "payment_id": str(payment.id),
                "amount": {"minor_units": payment.amount_minor, "currency": payment.currency},
                "provider": payment.provider or "",
                "provider_reference": reference,
                "executor_id": payment.executor_id,
            },
        )
    )


def _fail_execution(
    uow: UnitOfWork, envelope: Envelope, payment: Payment, config: PaymentConfig, reason: str, *, final: bool = False
) -> None:
    now = config.clock()
    payment.state = domain.transition(payment.state, PaymentState.FAILED)
    payment.last_error = reason
    payment.next_attempt_at = None
    payment.updated_at = now
    execution = _current_execution(uow.session, payment)
    if execution is not None:
        execution.outcome = PaymentState.FAILED
        execution.finished_at = now
        execution.reason = reason
    left = 0 if final else domain.executions_left(payment.executions, config.max_executions)
    uow.emit(
        envelope.caused(
            PAYMENT_FAILED.name,
            {
                "requisition_id": str(payment.requisition_id),
                "payment_id": str(payment.id),
                "reason": reason,
                "final": left == 0,
                "executions_left": left,
            },
        )
    )
    then = "No execution is left; the hold is released." if left == 0 else f"Treasury may retry ({left} left)."
    uow.emit(
        envelope.caused(
            ALERT_RAISED.name,
            {
                "kind": "payment_failed",
                "severity": "critical",
                "message": f"Payment {payment.id} failed (execution {payment.executions}): {reason}. {then}",
                "subject": f"payment:{payment.id}",
                "requisition_id": str(payment.requisition_id),
                "branch_id": payment.branch_id,
                "region_id": payment.region_id,
                "source": "payment",
            },
        )
    )


# -- the reconciler -------------------------------------------------------------------

RECONCILE_BATCH = 100


def _clear_alerts(uow: UnitOfWork, envelope: Envelope, payment: Payment, note: str) -> None:
    """A payment done: its earlier failure and its being stuck are over (only sent if they were)."""
    subject = f"payment:{payment.id}"
    kinds = (["payment_failed"] if payment.executions > 1 else []) + (["payment_stuck"] if payment.redrives else [])
    for kind in kinds:
        uow.emit(envelope.caused(ALERT_CLEARED.name, {"kind": kind, "subject": subject, "note": note}))


def reconcile_payments(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Send the disbursement job again for payments stuck in ``processing`` (a worker died, a message was lost)."""
    as_of = payload.get("as_of") or utcnow()
    stuck = list(
        uow.session.scalars(
            select(Payment)
            .where(Payment.state == PaymentState.PROCESSING, Payment.updated_at < domain.stuck_before(as_of))
            .order_by(Payment.updated_at)
            .limit(RECONCILE_BATCH)
            # A payment a job holds right now is making progress: not stuck.
            .with_for_update(skip_locked=True)
        )
    )
    for payment in stuck:
        payment.redrives += 1
        payment.updated_at = utcnow()
        payment.next_attempt_at = None
        uow.emit(envelope.caused(DISBURSE_PAYMENT.name, {"payment_id": str(payment.id)}))
        uow.emit(envelope.caused(ALERT_RAISED.name, _stuck_alert(payment)))
    return {"redriven": [str(p.id) for p in stuck]}


def _stuck_alert(payment: Payment) -> dict[str, Any]:
    return {
        "kind": "payment_stuck",
        "severity": "warning",
        "message": f"Payment {payment.id} has been executing too long; sent again ({payment.redrives} time(s)).",
        "subject": f"payment:{payment.id}",
        "requisition_id": str(payment.requisition_id),
        "branch_id": payment.branch_id,
        "region_id": payment.region_id,
        "source": "payment",
    }


# -- queries --------------------------------------------------------------------------


def payment_snapshots(session: Session, ids: Sequence[Any], *, config: PaymentConfig) -> list[dict[str, Any]]:
    """Payments as the gateway projects them: executions and provider calls included."""
    executions: dict[uuid.UUID, list[PaymentExecution]] = {}
    for execution in session.scalars(
        select(PaymentExecution).where(PaymentExecution.payment_id.in_(ids)).order_by(PaymentExecution.number)
    ):
        executions.setdefault(execution.payment_id, []).append(execution)
    attempts: dict[uuid.UUID, list[ProviderAttempt]] = {}
    for attempt in session.scalars(
        select(ProviderAttempt).where(ProviderAttempt.payment_id.in_(ids)).order_by(ProviderAttempt.id)
    ):
        attempts.setdefault(attempt.payment_id, []).append(attempt)
    return [
        {
            "id": str(p.id),
            "requisition_id": str(p.requisition_id),
            "branch_id": p.branch_id,
            "region_id": p.region_id,
            "state": str(p.state),
            "completed_at": p.completed_at.isoformat() if p.completed_at else None,
            "body": payment_body(p, config.max_executions, executions.get(p.id, []), attempts.get(p.id, [])),
        }
        for p in session.scalars(select(Payment).where(Payment.id.in_(ids)))
    ]


def authenticator_snapshots(session: Session, ids: Sequence[Any]) -> list[dict[str, Any]]:
    """Users' authenticators as the gateway projects them: at sign-in, ask for a code or for an enrolment."""
    return [
        {"id": enrolment.user_id, "status": enrolment.status, "body": authenticator_body(enrolment)}
        for enrolment in session.scalars(
            select(OtpEnrolment).where(OtpEnrolment.user_id.in_([str(i) for i in ids])).order_by(OtpEnrolment.user_id)
        )
    ]


# -- the read model -------------------------------------------------------------------


def _payable(session: Session, requisition_id: uuid.UUID) -> PayableRequisition:
    """The read-model row of a requisition, created empty if no event about it came before."""
    session.execute(
        upsert.insert(session, PayableRequisition).values(requisition_id=requisition_id).on_conflict_do_nothing()
    )
    return session.get_one(PayableRequisition, requisition_id, with_for_update=True, populate_existing=True)


def on_requisition_approved(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """Keep what paying needs: who asked and approved (segregation), the amount, the payee."""
    row = _payable(uow.session, payload["requisition_id"])
    amount: Money = payload["amount"]
    payee = payload.get("payee") or {}
    row.voucher_no = payload["voucher_no"]
    row.branch_id = payload["branch_id"]
    row.region_id = payload["region_id"]
    row.requester_id = payload["requester_id"]
    row.approver_ids = sorted(set(payload["approver_ids"]) | {payload["approver_id"]})
    row.amount_minor = amount.minor_units
    row.currency = amount.currency
    row.payee_name = payee.get("name")
    row.payee_method = payee.get("method")
    row.payee_account_ref = payee.get("account_ref", "")
    row.approved_at = payload["approved_at"]


def on_funds_reserved(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """The ledger holds the money: the requisition may be paid."""
    row = _payable(uow.session, payload["requisition_id"])
    amount: Money = payload["amount"]
    row.hold_transfer_id = payload["transfer_id"]
    row.branch_id = row.branch_id or payload["branch_id"]
    if row.amount_minor is None:
        row.amount_minor, row.currency = amount.minor_units, amount.currency
    row.reserved_at = row.reserved_at or utcnow()


def on_requisition_cancelled(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """A cancelled requisition is never executed (again)."""
    row = _payable(uow.session, payload["requisition_id"])
    row.branch_id = row.branch_id or payload["branch_id"]
    row.cancelled_at = row.cancelled_at or utcnow()
