"""Payment rules: OTP steps, lockout, the payment state machine, retries, segregation. Pure, no I/O.

Every function that depends on time takes ``now``; nothing here reads a clock, so tests
can walk a code through its time steps and a user through a lockout deterministically.
"""

from __future__ import annotations

import hmac
import math
import random
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

import pyotp

from shared.contracts.envelope import Actor

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

TREASURY_ROLE = "treasury"


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
    """A user's run of failed payment codes and the lock it may have earned."""

    failures: int = 0
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        """Whether payments are refused to this user at ``now``."""
        return self.locked_until is not None and now < self.locked_until

    def retry_after_seconds(self, now: datetime) -> int:
        """Whole seconds until the lock lifts (0 when not locked)."""
        if not self.locked(now):
            return 0
        assert self.locked_until is not None
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
    """Only treasury executes payments and holds an OTP enrolment for it."""
    return TREASURY_ROLE in actor.roles


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


class InvalidTransition(ValueError):
    """A move the payment state machine does not allow."""

    def __init__(self, current: PaymentState, target: PaymentState) -> None:
        super().__init__(f"a payment that is {current} cannot become {target}")
        self.current = current
        self.target = target


def transition(current: str, target: PaymentState) -> PaymentState:
    """The new state, or :class:`InvalidTransition`."""
    state = PaymentState(current)
    if target not in TRANSITIONS[state]:
        raise InvalidTransition(state, target)
    return target


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
        return uniform(0.0, min(self.cap_seconds, self.base_seconds * 2 ** (retry_no - 1)))

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


def with_cap(policy: RetryPolicy, visibility_timeout: float | None) -> RetryPolicy:
    """The policy with its cap set from the broker's visibility timeout."""
    return replace(policy, cap_seconds=retry_cap_seconds(visibility_timeout))


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
