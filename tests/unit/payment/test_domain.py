"""Payment rules with a fake clock: OTP steps, lockout, state machine, retries, segregation."""

from __future__ import annotations

import base64
import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from services.payment import domain
from services.payment.domain import (
    ExecutionBlock,
    Guard,
    InvalidTransition,
    Next,
    OtpRejection,
    Outcome,
    PaymentState,
    RetryPolicy,
    Segregation,
)
from shared.contracts.envelope import Actor

# Fixed secrets keep every run identical (a random one could, once in a million, collide).
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
OTHER_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
# 10 s into a 30 s step, so "now ± a few seconds" stays in the same step.
NOW = datetime(2026, 3, 1, 9, 0, 10, tzinfo=UTC)
STEP = domain.time_step(NOW)


def code(offset: int, secret: str = SECRET) -> str:
    return domain.code_at_step(secret, STEP + offset)


# -- OTP ------------------------------------------------------------------------------


def test_secrets_are_160_bits_of_base32() -> None:
    secret = domain.new_otp_secret()
    assert len(secret) == 32
    assert len(base64.b32decode(secret)) == 20
    assert domain.new_otp_secret() != secret


def test_our_codes_are_the_ones_an_authenticator_shows() -> None:
    assert domain.code_at_step(SECRET, STEP) == pyotp.TOTP(SECRET).at(NOW)
    assert domain.code_at_step(SECRET, STEP + 1) == pyotp.TOTP(SECRET).at(NOW + timedelta(seconds=30))


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_a_code_of_this_step_or_one_either_side_is_accepted_for_its_step(offset: int) -> None:
    check = domain.check_code(SECRET, code(offset), NOW)
    assert check.accepted
    assert check.step == STEP + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_codes_further_away_are_invalid(offset: int) -> None:
    check = domain.check_code(SECRET, code(offset), NOW)
    assert not check.accepted
    assert check.rejection is OtpRejection.INVALID


def test_the_window_moves_with_the_clock() -> None:
    later = NOW + timedelta(seconds=30)
    assert domain.check_code(SECRET, code(-1), later).rejection is OtpRejection.INVALID
    assert domain.check_code(SECRET, code(2), later).step == STEP + 2


def test_a_code_of_another_secret_is_invalid() -> None:
    assert domain.check_code(SECRET, code(0, OTHER_SECRET), NOW).rejection is OtpRejection.INVALID


def test_a_spent_step_is_refused_as_reused_not_as_invalid() -> None:
    assert domain.check_code(SECRET, code(0), NOW, used_steps={STEP}).rejection is OtpRejection.REUSED
    # Spending one step leaves its neighbours usable.
    assert domain.check_code(SECRET, code(1), NOW, used_steps={STEP}).step == STEP + 1


def test_window_steps_are_the_three_a_code_may_belong_to() -> None:
    assert list(domain.window_steps(NOW)) == [STEP - 1, STEP, STEP + 1]


def test_the_provisioning_uri_names_issuer_user_and_secret() -> None:
    uri = domain.provisioning_uri(SECRET, "tom")
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == SECRET
    assert parsed.name == "tom"
    assert parsed.issuer == domain.OTP_ISSUER


# -- lockout --------------------------------------------------------------------------


def fail(guard: Guard, times: int, now: datetime = NOW) -> Guard:
    for _ in range(times):
        guard = guard.after_failure(now)
    return guard


def test_four_failures_leave_one_attempt() -> None:
    guard = fail(Guard(), 4)
    assert not guard.locked(NOW)
    assert guard.attempts_left == 1


def test_the_fifth_consecutive_failure_locks_for_fifteen_minutes() -> None:
    guard = fail(Guard(), 5)
    assert guard.locked(NOW)
    assert guard.locked(NOW + timedelta(minutes=14, seconds=59))
    assert not guard.locked(NOW + timedelta(minutes=15))
    assert guard.retry_after_seconds(NOW) == 15 * 60
    assert guard.retry_after_seconds(NOW + timedelta(minutes=15)) == 0


def test_failures_while_locked_neither_count_nor_extend_the_lock() -> None:
    locked = fail(Guard(), 5)
    assert fail(locked, 10, NOW + timedelta(minutes=5)) == locked


def test_after_the_lock_the_user_has_five_fresh_tries() -> None:
    after = NOW + timedelta(minutes=15)
    guard = fail(fail(Guard(), 5), 4, after)
    assert not guard.locked(after)
    assert fail(guard, 1, after).locked(after)


def test_a_success_ends_the_run_of_failures() -> None:
    guard = fail(Guard(), 4).after_success()
    assert fail(guard, 4) == Guard(4, None)


# -- segregation ----------------------------------------------------------------------


def test_the_requester_cannot_pay() -> None:
    assert domain.segregation_breach("u1", "u1", ["u2"]) is Segregation.REQUESTER


def test_an_approver_cannot_pay() -> None:
    assert domain.segregation_breach("u2", "u1", ["u3", "u2"]) is Segregation.APPROVER


def test_anyone_else_may_pay() -> None:
    assert domain.segregation_breach("u4", "u1", ["u2", "u3"]) is None


def test_only_treasury_pays() -> None:
    assert domain.is_treasury(Actor("u1", "tess", roles=frozenset({"treasury"})))
    assert not domain.is_treasury(Actor("u2", "fred", roles=frozenset({"finance", "cfo", "admin"})))
    assert not domain.is_treasury(Actor("u3", "nobody"))


# -- the state machine ----------------------------------------------------------------

ALLOWED = sorted((a, b) for a, targets in domain.TRANSITIONS.items() for b in targets)
REFUSED = sorted((a, b) for a, b in itertools.product(PaymentState, PaymentState) if b not in domain.TRANSITIONS[a])


@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_every_allowed_transition(current: PaymentState, target: PaymentState) -> None:
    assert domain.transition(current, target) is target


@pytest.mark.parametrize(("current", "target"), REFUSED)
def test_every_other_transition_is_refused(current: PaymentState, target: PaymentState) -> None:
    with pytest.raises(InvalidTransition, match=f"{current} cannot become {target}"):
        domain.transition(current, target)


def test_a_completed_payment_is_final() -> None:
    assert domain.TRANSITIONS[PaymentState.COMPLETED] == frozenset()


@pytest.mark.parametrize(
    ("state", "executions", "expected"),
    [
        (None, 0, None),
        ("processing", 1, ExecutionBlock.IN_PROGRESS),
        ("completed", 1, ExecutionBlock.ALREADY_PAID),
        ("failed", 1, None),
        ("failed", 2, None),
        ("failed", 3, ExecutionBlock.LIMIT_REACHED),
        ("failed", 4, ExecutionBlock.LIMIT_REACHED),
    ],
)
def test_who_may_execute_again(state: str | None, executions: int, expected: ExecutionBlock | None) -> None:
    assert domain.execution_block(state, executions, max_executions=3) is expected


def test_executions_left_never_goes_negative() -> None:
    assert [domain.executions_left(n, 3) for n in range(5)] == [3, 2, 1, 0, 0]


def test_one_requisition_one_payment_id() -> None:
    requisition = uuid.uuid4()
    assert domain.payment_id_for(requisition) == domain.payment_id_for(requisition)
    assert domain.payment_id_for(requisition) != domain.payment_id_for(uuid.uuid4())


# -- retries --------------------------------------------------------------------------


def test_paid_completes_and_permanent_fails_at_once() -> None:
    policy = RetryPolicy(max_retries=3)
    assert policy.next_step(Outcome.PAID, 1) is Next.COMPLETE
    assert policy.next_step(Outcome.PERMANENT, 1) is Next.FAIL


def test_transient_errors_are_retried_three_times_then_fail() -> None:
    policy = RetryPolicy(max_retries=3)
    assert [policy.next_step(Outcome.TRANSIENT, n) for n in (1, 2, 3, 4)] == [Next.RETRY] * 3 + [Next.FAIL]


def test_backoff_doubles_up_to_the_cap_with_full_jitter() -> None:
    policy = RetryPolicy(max_retries=8, base_seconds=1.0, cap_seconds=5.0)
    upper = [policy.delay(n, uniform=lambda _low, high: high) for n in range(1, 7)]
    lower = [policy.delay(n, uniform=lambda low, _high: low) for n in range(1, 7)]
    assert upper == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert lower == [0.0] * 6
    random.seed(11)
    samples = [policy.delay(3) for _ in range(500)]
    assert all(0 <= s <= 4.0 for s in samples)
    assert max(samples) > 3.5  # spread over the whole window, not clustered at its top
    assert min(samples) < 0.5


@pytest.mark.parametrize(("visibility", "cap"), [(5, 1.25), (300, 30.0), (None, 30.0), (60, 15.0)])
def test_retry_delays_stay_well_below_the_visibility_timeout(visibility: int | None, cap: float) -> None:
    assert domain.retry_cap_seconds(visibility) == cap


def test_a_payment_is_stuck_after_a_minute_without_progress() -> None:
    assert domain.stuck_before(NOW) == NOW - timedelta(seconds=60)
    # Twice the longest retry delay: a payment waiting for a retry is not taken for stuck.
    assert domain.STUCK_AFTER.total_seconds() >= 2 * domain.retry_cap_seconds(None)
