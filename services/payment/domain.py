"""Payment rules: OTP steps, lockout, the payment state machine, executing, retries, segregation,
and the second factor (enrolling, signing in, resetting). Pure, no I/O.

Every function that depends on time takes ``now``; nothing here reads a clock, so tests
can walk a code through its time steps and a user through a lockout deterministically.
"""

from __future__ import annotations

import hmac
import math
import random
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import pyotp

from shared import backoff
from shared.contracts.envelope import Actor
from shared.contracts.permissions import Action, may, permission
from shared.statemachine import InvalidTransition, StateMachine  # noqa: F401 - callers catch what transition() raises

# -- OTP ------------------------------------------------------------------------------

# RFC 6238 defaults (SHA-1, 6 digits, 30 s), which every authenticator app understands.
OTP_DIGITS = 6
OTP_INTERVAL_SECONDS = 30
# ±1 step: tolerates a phone's clock drift and the seconds it takes to type the code
# (warehouse/utils/otp.py makes the same trade-off) while keeping a code alive ~90 s at most.
OTP_WINDOW = 1
OTP_ISSUER = "Petty cash"
# 32 base32 characters are 160 bits, the secret length RFC 4226 section 4 recommends.
OTP_SECRET_CHARS = 32


def new_otp_secret() -> str:
    """A fresh 160-bit TOTP secret, base32 as authenticator apps expect."""
    return pyotp.random_base32(OTP_SECRET_CHARS)


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` URI an authenticator app scans."""
    return pyotp.TOTP(secret, digits=OTP_DIGITS, interval=OTP_INTERVAL_SECONDS).provisioning_uri(
        name=username, issuer_name=OTP_ISSUER
    )


def time_step(now: datetime) -> int:
    """The TOTP counter at ``now``."""
    return math.floor(now.timestamp()) // OTP_INTERVAL_SECONDS


def code_at_step(secret: str, step: int) -> str:
    """The code an authenticator shows during time step ``step``."""
    return pyotp.TOTP(secret, digits=OTP_DIGITS, interval=OTP_INTERVAL_SECONDS).generate_otp(step)


class OtpRejection(StrEnum):
    """Why a code was not accepted (the problem type the API answers with)."""

    INVALID = "otp-invalid"
    REUSED = "otp-already-used"


@dataclass(frozen=True)
class OtpCheck:
    """The outcome of checking a code: the step it was accepted for, or why not."""

    step: int | None
    rejection: OtpRejection | None = None

    @property
    def accepted(self) -> bool:
        return self.step is not None


def check_code(secret: str, code: str, now: datetime, used_steps: Collection[int] = ()) -> OtpCheck:
    """Accept a code of the current step or one step either side, each step once.

    ``used_steps`` are the steps this user already spent; the database's unique
    (user, step) constraint backs this check up when two requests race.
    """
    current = time_step(now)
    matched = [
        step
        for step in (current, current - OTP_WINDOW, current + OTP_WINDOW)
        # Constant-time comparison: response timing must not reveal how many digits matched.
        if hmac.compare_digest(code_at_step(secret, step), code)
    ]
    if not matched:
        return OtpCheck(None, OtpRejection.INVALID)
    fresh = [step for step in matched if step not in used_steps]
    if not fresh:
        return OtpCheck(None, OtpRejection.REUSED)
    return OtpCheck(fresh[0])


def window_steps(now: datetime) -> range:
    """The steps a code may belong to at ``now`` (for loading the ones already used)."""
    current = time_step(now)
    return range(current - OTP_WINDOW, current + OTP_WINDOW + 1)


# -- lockout --------------------------------------------------------------------------

MAX_CONSECUTIVE_FAILURES = 5
LOCKOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class Guard:
    """A user's run of failed codes and the lock it may have earned.

    One guard per user for paying and signing in alike: a guess at either spends the same
    budget, so splitting guesses between the two never buys more of them.
    """

    failures: int = 0
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        """Whether codes (paying and signing in) are refused to this user at ``now``."""
        return self.locked_until is not None and now < self.locked_until

    def retry_after_seconds(self, now: datetime) -> int:
        """Whole seconds until the lock lifts (0 when not locked)."""
        if self.locked_until is None or not self.locked(now):
            return 0
        return math.ceil((self.locked_until - now).total_seconds())

    @property
    def attempts_left(self) -> int:
        return MAX_CONSECUTIVE_FAILURES - self.failures

    def after_failure(self, now: datetime) -> Guard:
        """The guard after one more failed code; the fifth in a row locks for 15 minutes."""
        if self.locked(now):
            return self  # refused without a check: it neither counts nor extends the lock
        failures = self.failures + 1
        if failures >= MAX_CONSECUTIVE_FAILURES:
            # The count starts again, so after the lock the user has five fresh tries.
            return Guard(0, now + LOCKOUT)
        return Guard(failures, None)

    def after_success(self) -> Guard:
        """A good code ends the run of failures."""
        return Guard()


# -- who may pay ----------------------------------------------------------------------


class Segregation(StrEnum):
    """The segregation-of-duties rule a would-be executor breaks."""

    REQUESTER = "requester-cannot-pay"
    APPROVER = "approver-cannot-pay"


def is_treasury(actor: Actor) -> bool:
    """Only treasury executes payments."""
    return may(actor, Action.EXECUTE_PAYMENT)


def segregation_breach(executor_id: str, requester_id: str, approver_ids: Iterable[str]) -> Segregation | None:
    """The rule broken if this executor paid this requisition, or None."""
    if executor_id == requester_id:
        return Segregation.REQUESTER
    if executor_id in set(approver_ids):
        return Segregation.APPROVER
    return None


# -- the payment state machine --------------------------------------------------------


class PaymentState(StrEnum):
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


P = PaymentState
TRANSITIONS: dict[PaymentState, frozenset[PaymentState]] = {
    P.PROCESSING: frozenset({P.COMPLETED, P.FAILED}),
    # A failed execution may be executed again (a fresh OTP), within the limit.
    P.FAILED: frozenset({P.PROCESSING}),
    P.COMPLETED: frozenset(),
}


MACHINE = StateMachine("a payment", PaymentState, TRANSITIONS)
transition = MACHINE.move  # the new state, or InvalidTransition if the machine has no such edge


class ExecutionBlock(StrEnum):
    """Why a payment cannot be executed now (the problem type the API answers with)."""

    IN_PROGRESS = "payment-in-progress"
    ALREADY_PAID = "already-paid"
    LIMIT_REACHED = "execution-limit-reached"


def execution_block(state: str | None, executions: int, max_executions: int) -> ExecutionBlock | None:
    """Whether a payment in ``state`` after ``executions`` executions may be executed again."""
    if state is None:
        return None  # never executed
    if state == P.PROCESSING:
        return ExecutionBlock.IN_PROGRESS
    if state == P.COMPLETED:
        return ExecutionBlock.ALREADY_PAID
    if executions >= max_executions:
        return ExecutionBlock.LIMIT_REACHED
    return None


def executions_left(executions: int, max_executions: int) -> int:
    """How many more executions treasury may start."""
    return max(0, max_executions - executions)


# The payment's id is derived from the requisition: one requisition, one payment, one
# idempotency key towards the provider, however many times the command arrives.
PAYMENT_NAMESPACE = uuid.UUID("6f1c1a52-4f0e-4d6b-9a53-7d0b3e2c9a11")


def payment_id_for(requisition_id: uuid.UUID) -> uuid.UUID:
    """The id (and provider idempotency key) of a requisition's payment."""
    return uuid.uuid5(PAYMENT_NAMESPACE, str(requisition_id))


# -- executing a payment: decide, then do ---------------------------------------------
#
# ``execute_payment`` loads the facts below, asks :func:`decide_execution` what they come
# to, and does that: raises a refusal (its effects roll back), counts a wrong code (kept,
# committed with the command), or spends the code's step and starts the execution.


class PaymentRule(StrEnum):
    """The rules an execution is checked against, in the order they are checked.

    A :class:`Refusal` names the one it broke; most share their name with the problem type
    the API answers with (the exceptions: an unknown requisition answers ``not-found``, and
    both segregation rules answer ``segregation-of-duties`` with the rule as a member).
    """

    TREASURY_ONLY = "treasury-only"
    LOCKED_OUT = "otp-locked-out"
    REQUISITION_NOT_APPROVED = "requisition-not-approved"
    REQUISITION_CANCELLED = "requisition-cancelled"
    FUNDS_NOT_RESERVED = "funds-not-reserved"
    PAYEE_UNKNOWN = "payee-unknown"
    REQUESTER_CANNOT_PAY = Segregation.REQUESTER.value
    APPROVER_CANNOT_PAY = Segregation.APPROVER.value
    PAYMENT_IN_PROGRESS = ExecutionBlock.IN_PROGRESS.value
    ALREADY_PAID = ExecutionBlock.ALREADY_PAID.value
    EXECUTION_LIMIT_REACHED = ExecutionBlock.LIMIT_REACHED.value
    OTP_NOT_ENROLLED = "otp-not-enrolled"
    OTP_UNREADABLE = "otp-unreadable"


@dataclass(frozen=True)
class Problem:
    """What a refused request is answered with: HTTP status, problem type, the text shown, extra members."""

    status: int
    code: str
    detail: str
    extensions: Mapping[str, Any] = field(default_factory=dict)


class SecondFactorRule(StrEnum):
    """The rules enrolling, signing in with and resetting an authenticator are checked against.

    Each shares its name with the problem type the API answers with.
    """

    SECOND_FACTOR_ROLES_ONLY = "second-factor-roles-only"
    NOT_YOUR_AUTHENTICATOR = "not-your-authenticator"
    NO_AUTHENTICATOR = "no-authenticator"
    OTP_NOT_ENROLLED = "otp-not-enrolled"
    LOCKED_OUT = "otp-locked-out"
    OTP_UNREADABLE = "otp-unreadable"


class RunRule(StrEnum):
    """The rules a payment run is checked against as a whole (its items: :class:`PaymentRule`)."""

    NOTHING_TO_PAY = "nothing-to-pay"
    ANOTHER_CURRENCY = "another-currency"
    NOT_AWAITING = "run-not-awaiting-authorisation"
    MAKER_CHECKER = "maker-checker"
    SEGREGATION = "segregation-of-duties"


Rule = PaymentRule | SecondFactorRule | RunRule


@dataclass(frozen=True)
class Refusal:
    """A request a rule refuses: answered with ``problem``, and nothing it did is kept."""

    rule: Rule
    problem: Problem


@dataclass(frozen=True)
class CodeRefused:
    """A wrong or spent code: not a refusal but an outcome with effects, kept with the command.

    ``guard`` is the executor's guard after this failure (it may now be locked); ``problem``
    is the answer.
    """

    rejection: OtpRejection | None
    guard: Guard
    problem: Problem


@dataclass(frozen=True)
class StartExecution:
    """A good code: spend its time step and start execution ``number`` of the payment.

    ``if_step_taken`` is what this becomes when a concurrent request spent the same step first
    (the database's unique constraint says so when the step is spent): a reused code.
    """

    step: int
    number: int
    create_payment: bool
    state: PaymentState
    clear_failures: bool
    if_step_taken: CodeRefused


ExecutionDecision = Refusal | CodeRefused | StartExecution

UNREADABLE = Refusal(
    PaymentRule.OTP_UNREADABLE,
    Problem(409, "otp-unreadable", "Your authenticator can no longer be read (the OTP key changed); it must be reset."),
)


@dataclass(frozen=True)
class PayableFacts:
    """What payment knows of the requisition to pay (its ``payable_requisitions`` row)."""

    approved: bool
    cancelled: bool
    reserved: bool
    requester_id: str
    approver_ids: tuple[str, ...]
    payee_method: str | None
    amount_minor: int | None
    currency: str | None


@dataclass(frozen=True)
class PaymentFacts:
    """The requisition's payment, once it was executed: its state and how many executions it had."""

    state: str
    executions: int


@dataclass(frozen=True)
class AuthenticatorFacts:
    """The executor's OTP enrolment: whether it is active, its secret (None: sealed with
    another key, unreadable) and the time steps near now the executor already spent."""

    active: bool
    secret: str | None
    used_steps: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ExecutionFacts:
    """Everything an execution is decided on; ``requisition``, ``payment`` and
    ``authenticator`` are None when there is no such row."""

    executor: Actor
    guard: Guard
    requisition: PayableFacts | None
    payment: PaymentFacts | None
    authenticator: AuthenticatorFacts | None
    code: str
    now: datetime
    max_executions: int


def decide_execution(facts: ExecutionFacts) -> ExecutionDecision:
    """What executing a payment comes to: a refusal, a wrong code counted, or the execution to start.

    The rules are checked in the order the API has always answered in: who the executor is
    (treasury, not locked out), the requisition (approved, not cancelled, reserved, a payee,
    segregation of duties), the payment (not under way, not paid, an execution left), the
    authenticator (active, readable); the code comes last, so a refusal never costs an attempt.
    """
    refusal = executor_refusal(facts.executor, facts.guard, facts.now) or item_refusal(
        facts.requisition, facts.payment, facts.executor.user_id, facts.max_executions
    )
    if refusal is not None:
        return refusal
    checked = check_executor_code(facts.guard, facts.authenticator, facts.code, facts.now)
    return _execution_to_start(facts, checked) if isinstance(checked, int) else checked


def item_refusal(
    requisition: PayableFacts | None, payment: PaymentFacts | None, executor_id: str, max_executions: int
) -> Refusal | None:
    """What stops ``executor_id`` paying this requisition now (alone or in a run), if anything."""
    return _requisition_refusal(requisition, executor_id) or _payment_refusal(payment, max_executions)


def _refuse(rule: Rule, status: int, detail: str, code: str | None = None, /, **extensions: Any) -> Refusal:
    """A refusal by ``rule``, answered with the problem type ``code`` (the rule's name by default).

    Positional-only, so an extension member may be called ``rule`` (segregation's is).
    """
    return Refusal(rule, Problem(status, code or str(rule), detail, extensions))


def treasury_refusal(actor: Actor) -> Refusal | None:
    """Refuses anyone outside treasury (paying)."""
    if is_treasury(actor):
        return None
    return _refuse(PaymentRule.TREASURY_ONLY, 403, "Only treasury executes payments.")


# What a lockout stops, in each answer's words. A payment's answers keep theirs; at sign-in the
# user also learns that the same lock holds their payments (one guard for both).
PAYING = "payments are"
SIGNING_IN = "signing in and paying are"


def _lockout_extensions(guard: Guard, now: datetime) -> dict[str, Any]:
    """The members a lockout is answered with: seconds to wait (the Retry-After) and until when."""
    locked_until = guard.locked_until.isoformat() if guard.locked_until is not None else None
    return {"retry_after": guard.retry_after_seconds(now), "locked_until": locked_until}


def executor_refusal(executor: Actor, guard: Guard, now: datetime) -> Refusal | None:
    """Refuses an executor outside treasury, or one locked out by wrong codes (the code is not checked)."""
    refusal = treasury_refusal(executor)
    if refusal is not None:
        return refusal
    if guard.locked(now):
        return _locked_out(PaymentRule.LOCKED_OUT, guard, now, PAYING)
    return None


def _locked_out(rule: Rule, guard: Guard, now: datetime, what: str) -> Refusal:
    """The refusal of a locked-out user (429, with when to come back); ``what`` names what is locked."""
    detail = f"Too many wrong codes: {what} locked for you for now."
    return _refuse(rule, 429, detail, **_lockout_extensions(guard, now))


def _requisition_refusal(requisition: PayableFacts | None, executor_id: str) -> Refusal | None:
    """The first rule the requisition breaks: approved, not cancelled, reserved, a payee, segregation."""
    if requisition is None or not requisition.approved:
        return _refuse(PaymentRule.REQUISITION_NOT_APPROVED, 404, "No approved requisition with this id.", "not-found")
    if requisition.cancelled:
        return _refuse(PaymentRule.REQUISITION_CANCELLED, 409, "The requisition was cancelled; it cannot be paid.")
    if not requisition.reserved:
        return _refuse(PaymentRule.FUNDS_NOT_RESERVED, 409, "The funds are not reserved yet; it cannot be paid before.")
    if requisition.payee_method is None or requisition.amount_minor is None or requisition.currency is None:
        return _refuse(PaymentRule.PAYEE_UNKNOWN, 409, "The approval did not name a payee; it cannot be paid.")
    return _segregation_refusal(requisition, executor_id)


def _segregation_refusal(requisition: PayableFacts, executor_id: str) -> Refusal | None:
    """Refuses the requester and the approvers: someone else in treasury pays."""
    breach = segregation_breach(executor_id, requisition.requester_id, requisition.approver_ids)
    if breach is None:
        return None
    who = "requested" if breach == Segregation.REQUESTER else "approved"
    return _refuse(
        PaymentRule(breach.value),
        403,
        f"Segregation of duties: you {who} this requisition, so someone else in treasury must pay it.",
        "segregation-of-duties",
        rule=str(breach),
    )


def _payment_refusal(payment: PaymentFacts | None, max_executions: int) -> Refusal | None:
    """Refuses a payment under way or paid, or one that failed every execution it had."""
    block = execution_block(payment.state if payment else None, payment.executions if payment else 0, max_executions)
    if block == ExecutionBlock.LIMIT_REACHED:
        return _refuse(
            PaymentRule.EXECUTION_LIMIT_REACHED,
            422,
            f"This payment failed {max_executions} times; it cannot be executed again.",
        )
    if block is not None:
        detail = "The payment is already under way." if block == ExecutionBlock.IN_PROGRESS else "Already paid."
        return _refuse(PaymentRule(block.value), 409, detail)
    return None


def check_executor_code(
    guard: Guard, authenticator: AuthenticatorFacts | None, code: str, now: datetime
) -> Refusal | CodeRefused | int:
    """With an active, readable authenticator, check a paying code: the time step to spend, or
    the wrong code counted (a refusal when there is no authenticator to check it with)."""
    if authenticator is None or not authenticator.active:
        return _refuse(PaymentRule.OTP_NOT_ENROLLED, 409, "Enrol and activate an authenticator before paying.")
    if authenticator.secret is None:
        return UNREADABLE
    check = check_code(authenticator.secret, code, now, authenticator.used_steps)
    if check.step is None:
        return _code_refused(guard, check.rejection, now)
    return check.step


def reused_code(guard: Guard, now: datetime) -> CodeRefused:
    """A good code whose step a concurrent request spent first: counted as a reused one."""
    return _code_refused(guard, OtpRejection.REUSED, now)


def rejected_code_problem(rejection: OtpRejection | None, **extensions: Any) -> Problem:
    """How a refused code is answered: a spent one is a conflict (409), any other is invalid (422)."""
    reused = rejection == OtpRejection.REUSED
    return Problem(
        409 if reused else 422,
        str(rejection),
        "That code was already used; wait for the next one." if reused else "That code is not valid.",
        extensions,
    )


def _code_refused(guard: Guard, rejection: OtpRejection | None, now: datetime, what: str = PAYING) -> CodeRefused:
    """Count a wrong or spent code against the user; the fifth in a row locks them out."""
    after = guard.after_failure(now)
    if after.locked(now):
        minutes = int(LOCKOUT.total_seconds() // 60)
        detail = f"Wrong code, {MAX_CONSECUTIVE_FAILURES} in a row: {what} locked for {minutes} minutes."
        return CodeRefused(rejection, after, Problem(429, "otp-locked-out", detail, _lockout_extensions(after, now)))
    return CodeRefused(rejection, after, rejected_code_problem(rejection, attempts_left=after.attempts_left))


def _execution_to_start(facts: ExecutionFacts, step: int) -> StartExecution:
    """The execution a good code starts: the payment's first (created processing) or its next."""
    payment = facts.payment
    return StartExecution(
        step=step,
        number=(payment.executions if payment else 0) + 1,
        create_payment=payment is None,
        state=PaymentState.PROCESSING if payment is None else transition(payment.state, PaymentState.PROCESSING),
        clear_failures=bool(facts.guard.failures),
        if_step_taken=reused_code(facts.guard, facts.now),
    )


# -- the second factor: enrolling, signing in, resetting ------------------------------
#
# The authenticator treasury pays with is also the second factor every privileged role signs
# in with (``SECOND_FACTOR_ROLES``): one enrolment, one guard, one set of spent steps per user.


def second_factor_refusal(actor: Actor) -> Refusal | None:
    """Refuses anyone whose roles do not sign in with a second factor (enrolling, activating, signing in)."""
    if may(actor, Action.ENROL_SECOND_FACTOR):
        return None
    roles = permission(Action.ENROL_SECOND_FACTOR).describe()
    return _refuse(
        SecondFactorRule.SECOND_FACTOR_ROLES_ONLY,
        403,
        f"Only {roles} users have an authenticator; your roles sign in without one.",
    )


@dataclass(frozen=True)
class SignInFacts:
    """Everything a sign-in's code is decided on; ``authenticator`` is None when the user never enrolled."""

    actor: Actor
    guard: Guard
    authenticator: AuthenticatorFacts | None
    code: str
    now: datetime


@dataclass(frozen=True)
class AcceptSignIn:
    """A good code: spend its time step and end any run of failures.

    ``if_step_taken`` is what this becomes when a concurrent request spent the same step first.
    """

    step: int
    clear_failures: bool
    if_step_taken: CodeRefused


SignInDecision = Refusal | CodeRefused | AcceptSignIn


def decide_sign_in(facts: SignInFacts) -> SignInDecision:
    """What a sign-in's code comes to: a refusal, a wrong or spent code counted, or the code accepted.

    Checked in this order: a second-factor role, an active enrolment, no lockout, a readable
    secret; the code comes last, so a refusal never costs an attempt. A code is held to the
    payment's rules (the window, each step once, the same guard).
    """
    refusal = second_factor_refusal(facts.actor)
    if refusal is not None:
        return refusal
    authenticator = facts.authenticator
    if authenticator is None or not authenticator.active:
        return _refuse(SecondFactorRule.OTP_NOT_ENROLLED, 409, "Enrol and activate an authenticator first.")
    if facts.guard.locked(facts.now):
        return _locked_out(SecondFactorRule.LOCKED_OUT, facts.guard, facts.now, SIGNING_IN)
    if authenticator.secret is None:
        return Refusal(SecondFactorRule.OTP_UNREADABLE, UNREADABLE.problem)
    check = check_code(authenticator.secret, facts.code, facts.now, authenticator.used_steps)
    if check.step is None:
        return _code_refused(facts.guard, check.rejection, facts.now, SIGNING_IN)
    return AcceptSignIn(
        step=check.step,
        clear_failures=bool(facts.guard.failures),
        if_step_taken=_code_refused(facts.guard, OtpRejection.REUSED, facts.now, SIGNING_IN),
    )


NO_AUTHENTICATOR = Refusal(
    SecondFactorRule.NO_AUTHENTICATOR, Problem(404, "no-authenticator", "This user has no authenticator to reset.")
)


def reset_refusal(actor: Actor, user_id: str, *, enrolled: bool) -> Refusal | None:
    """Whether ``actor`` may reset the authenticator of ``user_id``, who has one if ``enrolled``.

    An administrator resets anyone's; a second-factor user their own (the gateway asked for
    their password again first). Who may comes before whether there is one, so nobody else
    learns who has an authenticator.
    """
    if not may(actor, Action.ADMINISTER_USERS):
        if actor.user_id != user_id:
            detail = "Only an administrator resets someone else's authenticator."
            return _refuse(SecondFactorRule.NOT_YOUR_AUTHENTICATOR, 403, detail)
        refusal = second_factor_refusal(actor)
        if refusal is not None:
            return refusal
    return None if enrolled else NO_AUTHENTICATOR


# -- disbursement retries -------------------------------------------------------------


class Outcome(StrEnum):
    """What a provider call came to."""

    PAID = "paid"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


class Next(StrEnum):
    """What the disbursement does after a provider call."""

    COMPLETE = "complete"
    RETRY = "retry"
    FAIL = "fail"


@dataclass(frozen=True)
class RetryPolicy:
    """Transient provider errors: up to ``max_retries`` retries, exponential backoff, full jitter.

    ``cap_seconds`` keeps every delay well below the broker's visibility timeout: a retry is
    a message held unacknowledged until its countdown ends, and Redis would hand a message
    held longer than the visibility timeout to another worker (Celery's Redis caveats).
    """

    max_retries: int = 3
    base_seconds: float = 1.0
    cap_seconds: float = 60.0

    def delay(self, retry_no: int, uniform: Callable[[float, float], float] = random.uniform) -> float:
        """Seconds before retry number ``retry_no`` (1-based): uniform in [0, min(cap, base·2^(n-1))]."""
        return backoff.full_jitter(self.base_seconds, retry_no - 1, self.cap_seconds, uniform)

    def next_step(self, outcome: Outcome, attempts: int) -> Next:
        """After ``attempts`` calls in this execution ended in ``outcome``: complete, retry or fail."""
        if outcome == Outcome.PAID:
            return Next.COMPLETE
        if outcome == Outcome.TRANSIENT and attempts <= self.max_retries:
            return Next.RETRY
        return Next.FAIL


def retry_cap_seconds(visibility_timeout: float | None, ceiling: float = 30.0) -> float:
    """The longest retry delay: a quarter of the visibility timeout, never above ``ceiling``."""
    if not visibility_timeout:
        return ceiling
    return min(ceiling, visibility_timeout / 4)


# A job run leases the provider call it makes; a run that died mid-call frees it when the
# lease runs out (well before the broker redelivers its message: 300 s by default).
PROVIDER_CALL_LEASE = timedelta(seconds=30)


# -- the reconciler -------------------------------------------------------------------

# Twice the longest retry delay (:func:`retry_cap_seconds`: at most 30 s), so a payment
# waiting for its next retry is not taken for a stuck one; if it were, re-driving it would
# still be harmless (the job checks the state, the provider dedupes on the payment id).
STUCK_AFTER = timedelta(seconds=60)


def stuck_before(as_of: datetime, stuck_after: timedelta = STUCK_AFTER) -> datetime:
    """Processing payments whose last progress is older than this are re-driven."""
    return as_of - stuck_after
