"""Executing a payment, decided from plain facts: every refusal by its rule, every outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.payment import domain
from services.payment.domain import (
    AuthenticatorFacts,
    CodeRefused,
    ExecutionFacts,
    Guard,
    OtpRejection,
    PayableFacts,
    PaymentFacts,
    PaymentRule,
    PaymentState,
    Problem,
    Refusal,
    StartExecution,
)
from shared.contracts.envelope import Actor

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
# 10 s into a 30 s step, as in test_domain.
NOW = datetime(2026, 3, 1, 9, 0, 10, tzinfo=UTC)
STEP = domain.time_step(NOW)
EXECUTOR = "tess"


# -- factories --------------------------------------------------------------------------


def code(offset: int = 0) -> str:
    """The code an authenticator with SECRET shows ``offset`` steps from now."""
    return domain.code_at_step(SECRET, STEP + offset)


def wrong_code() -> str:
    near = {code(offset) for offset in range(-3, 4)}
    return next(c for c in (f"{n:06d}" for n in range(10**6)) if c not in near)


def executor(*roles: str) -> Actor:
    return Actor(EXECUTOR, "Tess", roles=frozenset(roles or ("treasury",)))


def payable(**changes: object) -> PayableFacts:
    """An approved, reserved, live requisition asked by rita, approved by abe and bob, paid to a bank."""
    good = PayableFacts(
        approved=True,
        cancelled=False,
        reserved=True,
        requester_id="rita",
        approver_ids=("abe", "bob"),
        payee_method="bank",
        amount_minor=150_000,
        currency="KES",
    )
    return replace(good, **changes)


def payment(state: str = "failed", executions: int = 1) -> PaymentFacts:
    return PaymentFacts(state, executions)


def authenticator(**changes: object) -> AuthenticatorFacts:
    return replace(AuthenticatorFacts(active=True, secret=SECRET, used_steps=frozenset()), **changes)


def locked(minutes: int = 10) -> Guard:
    return Guard(0, NOW + timedelta(minutes=minutes))


def facts(**changes: object) -> ExecutionFacts:
    """Facts that start a first execution; ``changes`` break one thing or another."""
    good = ExecutionFacts(
        executor=executor(),
        guard=Guard(),
        requisition=payable(),
        payment=None,
        authenticator=authenticator(),
        code=code(),
        now=NOW,
        max_executions=3,
    )
    return replace(good, **changes)


def reused_after(guard: Guard) -> CodeRefused:
    """What a spent code comes to for a user with ``guard`` (not locked by it)."""
    after = guard.after_failure(NOW)
    return CodeRefused(
        OtpRejection.REUSED,
        after,
        Problem(409, "otp-already-used", "That code was already used; wait for the next one.", {"attempts_left": 4}),
    )


# -- refusals ---------------------------------------------------------------------------

LOCKED_UNTIL = (NOW + timedelta(minutes=10)).isoformat()
SEGREGATION = "Segregation of duties: you {} this requisition, so someone else in treasury must pay it."

# (the facts' changes, the rule, the problem), the rules in the order they are checked.
REFUSALS: list[tuple[dict[str, object], PaymentRule, Problem]] = [
    (
        {"executor": executor("finance", "admin")},
        PaymentRule.TREASURY_ONLY,
        Problem(403, "treasury-only", "Only treasury executes payments."),
    ),
    (
        {"guard": locked(10)},
        PaymentRule.LOCKED_OUT,
        Problem(
            429,
            "otp-locked-out",
            "Too many wrong codes: payments are locked for you for now.",
            {"retry_after": 600, "locked_until": LOCKED_UNTIL},
        ),
    ),
    (
        {"requisition": None},
        PaymentRule.REQUISITION_NOT_APPROVED,
        Problem(404, "not-found", "No approved requisition with this id."),
    ),
    (
        {"requisition": payable(approved=False)},
        PaymentRule.REQUISITION_NOT_APPROVED,
        Problem(404, "not-found", "No approved requisition with this id."),
    ),
    (
        {"requisition": payable(cancelled=True)},
        PaymentRule.REQUISITION_CANCELLED,
        Problem(409, "requisition-cancelled", "The requisition was cancelled; it cannot be paid."),
    ),
    (
        {"requisition": payable(reserved=False)},
        PaymentRule.FUNDS_NOT_RESERVED,
        Problem(409, "funds-not-reserved", "The funds are not reserved yet; it cannot be paid before."),
    ),
    *(
        (
            {"requisition": payable(**{missing: None})},
            PaymentRule.PAYEE_UNKNOWN,
            Problem(409, "payee-unknown", "The approval did not name a payee; it cannot be paid."),
        )
        for missing in ("payee_method", "amount_minor", "currency")
    ),
    (
        {"requisition": payable(requester_id=EXECUTOR)},
        PaymentRule.REQUESTER_CANNOT_PAY,
        Problem(403, "segregation-of-duties", SEGREGATION.format("requested"), {"rule": "requester-cannot-pay"}),
    ),
    (
        {"requisition": payable(approver_ids=("abe", EXECUTOR))},
        PaymentRule.APPROVER_CANNOT_PAY,
        Problem(403, "segregation-of-duties", SEGREGATION.format("approved"), {"rule": "approver-cannot-pay"}),
    ),
    (
        {"payment": payment("processing")},
        PaymentRule.PAYMENT_IN_PROGRESS,
        Problem(409, "payment-in-progress", "The payment is already under way."),
    ),
    (
        {"payment": payment("completed")},
        PaymentRule.ALREADY_PAID,
        Problem(409, "already-paid", "Already paid."),
    ),
    (
        {"payment": payment("failed", 3)},
        PaymentRule.EXECUTION_LIMIT_REACHED,
        Problem(422, "execution-limit-reached", "This payment failed 3 times; it cannot be executed again."),
    ),
    (
        {"authenticator": None},
        PaymentRule.OTP_NOT_ENROLLED,
        Problem(409, "otp-not-enrolled", "Enrol and activate an authenticator before paying."),
    ),
    (
        {"authenticator": authenticator(active=False)},
        PaymentRule.OTP_NOT_ENROLLED,
        Problem(409, "otp-not-enrolled", "Enrol and activate an authenticator before paying."),
    ),
    (
        {"authenticator": authenticator(secret=None)},
        PaymentRule.OTP_UNREADABLE,
        Problem(
            409, "otp-unreadable", "Your authenticator can no longer be read (the OTP key changed); it must be reset."
        ),
    ),
]


@pytest.mark.parametrize(
    ("changes", "rule", "problem"), REFUSALS, ids=[f"{rule}-{i}" for i, (_, rule, _) in enumerate(REFUSALS)]
)
def test_each_rule_refuses_with_the_problem_the_api_answers(
    changes: dict[str, object], rule: PaymentRule, problem: Problem
) -> None:
    assert domain.decide_execution(facts(**changes)) == Refusal(rule, problem)


def test_every_rule_has_a_refusal_above() -> None:
    assert {rule for _, rule, _ in REFUSALS} == set(PaymentRule)


def test_the_limit_is_the_configured_one() -> None:
    refusal = domain.decide_execution(facts(payment=payment("failed", 5), max_executions=5))
    assert isinstance(refusal, Refusal)
    assert refusal.problem.detail == "This payment failed 5 times; it cannot be executed again."
    started = domain.decide_execution(facts(payment=payment("failed", 4), max_executions=5))
    assert isinstance(started, StartExecution)
    assert started.number == 5


def test_a_lock_that_ran_out_refuses_nothing() -> None:
    assert isinstance(domain.decide_execution(facts(guard=Guard(0, NOW))), StartExecution)


# Each step breaks one more rule than the facts before it; the earliest rule broken wins.
Break = Callable[[ExecutionFacts], ExecutionFacts]


def _requisition(f: ExecutionFacts, **changes: object) -> ExecutionFacts:
    return replace(f, requisition=replace(f.requisition, **changes))  # type: ignore[arg-type]


def _authenticator(f: ExecutionFacts, **changes: object) -> ExecutionFacts:
    return replace(f, authenticator=replace(f.authenticator, **changes))  # type: ignore[arg-type]


BREAKS: list[tuple[PaymentRule, Break]] = [
    (PaymentRule.TREASURY_ONLY, lambda f: replace(f, executor=executor("finance"))),
    (PaymentRule.LOCKED_OUT, lambda f: replace(f, guard=locked())),
    (PaymentRule.REQUISITION_NOT_APPROVED, lambda f: _requisition(f, approved=False)),
    (PaymentRule.REQUISITION_CANCELLED, lambda f: _requisition(f, cancelled=True)),
    (PaymentRule.FUNDS_NOT_RESERVED, lambda f: _requisition(f, reserved=False)),
    (PaymentRule.PAYEE_UNKNOWN, lambda f: _requisition(f, payee_method=None)),
    (PaymentRule.REQUESTER_CANNOT_PAY, lambda f: _requisition(f, requester_id=EXECUTOR)),
    (PaymentRule.APPROVER_CANNOT_PAY, lambda f: _requisition(f, approver_ids=(EXECUTOR,))),
    (PaymentRule.PAYMENT_IN_PROGRESS, lambda f: replace(f, payment=payment("processing"))),
    (PaymentRule.OTP_NOT_ENROLLED, lambda f: _authenticator(f, active=False)),
    (PaymentRule.OTP_UNREADABLE, lambda f: _authenticator(f, secret=None)),
]


@pytest.mark.parametrize("first", range(len(BREAKS)), ids=[str(rule) for rule, _ in BREAKS])
def test_rules_are_checked_in_order_and_the_code_last(first: int) -> None:
    broken = facts(code=wrong_code())
    for _, breaks in BREAKS[first:]:
        broken = breaks(broken)
    decision = domain.decide_execution(broken)
    assert isinstance(decision, Refusal)
    assert decision.rule is BREAKS[first][0]


# -- outcomes ---------------------------------------------------------------------------


def test_a_good_code_starts_the_first_execution() -> None:
    assert domain.decide_execution(facts()) == StartExecution(
        step=STEP,
        number=1,
        create_payment=True,
        state=PaymentState.PROCESSING,
        clear_failures=False,
        if_step_taken=reused_after(Guard()),
    )


def test_a_failed_payment_starts_its_next_execution() -> None:
    decision = domain.decide_execution(facts(payment=payment("failed", 2)))
    assert decision == StartExecution(
        step=STEP,
        number=3,
        create_payment=False,
        state=PaymentState.PROCESSING,
        clear_failures=False,
        if_step_taken=reused_after(Guard()),
    )


def test_a_good_code_clears_a_run_of_wrong_ones() -> None:
    decision = domain.decide_execution(facts(guard=Guard(3)))
    assert isinstance(decision, StartExecution)
    assert decision.clear_failures
    # Should a twin spend the step first, that counts as the fourth failure.
    assert decision.if_step_taken.guard == Guard(4)
    assert decision.if_step_taken.problem.extensions == {"attempts_left": 1}


def test_only_failures_are_cleared_not_a_lock_that_ran_out() -> None:
    decision = domain.decide_execution(facts(guard=Guard(0, NOW - timedelta(minutes=1))))
    assert isinstance(decision, StartExecution)
    assert not decision.clear_failures


@pytest.mark.parametrize("offset", [-1, 1])
def test_a_code_of_a_neighbouring_step_starts_for_that_step(offset: int) -> None:
    decision = domain.decide_execution(facts(code=code(offset)))
    assert isinstance(decision, StartExecution)
    assert decision.step == STEP + offset


def test_a_wrong_code_is_counted_and_answered_invalid() -> None:
    assert domain.decide_execution(facts(code=wrong_code())) == CodeRefused(
        OtpRejection.INVALID, Guard(1), Problem(422, "otp-invalid", "That code is not valid.", {"attempts_left": 4})
    )


def test_a_spent_code_is_counted_and_answered_reused() -> None:
    spent = authenticator(used_steps=frozenset({STEP}))
    assert domain.decide_execution(facts(authenticator=spent)) == reused_after(Guard())


def test_the_fifth_wrong_code_locks_the_executor_out() -> None:
    decision = domain.decide_execution(facts(guard=Guard(4), code=wrong_code()))
    until = NOW + domain.LOCKOUT
    assert decision == CodeRefused(
        OtpRejection.INVALID,
        Guard(0, until),
        Problem(
            429,
            "otp-locked-out",
            "Wrong code, 5 in a row: payments are locked for 15 minutes.",
            {"retry_after": 900, "locked_until": until.isoformat()},
        ),
    )


def test_a_twin_spending_the_step_of_the_fifth_try_locks_too() -> None:
    decision = domain.decide_execution(facts(guard=Guard(4)))
    assert isinstance(decision, StartExecution)
    assert decision.if_step_taken.guard == Guard(0, NOW + domain.LOCKOUT)
    assert decision.if_step_taken.problem.code == "otp-locked-out"


# -- properties -------------------------------------------------------------------------


def mostly(good: object, other: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Mostly ``good``, so facts that pass every rule are drawn often too, not only refusals."""
    return st.one_of(st.just(good), st.just(good), st.just(good), other)


USERS = st.sampled_from([EXECUTOR, "rita", "abe", "bob"])
FACTS = st.builds(
    ExecutionFacts,
    executor=mostly(executor(), st.just(executor("finance"))),
    guard=st.builds(
        Guard,
        failures=st.integers(0, domain.MAX_CONSECUTIVE_FAILURES - 1),
        locked_until=st.sampled_from([None, None, NOW - timedelta(minutes=1), NOW, NOW + timedelta(minutes=5)]),
    ),
    requisition=mostly(
        payable(),
        st.none()
        | st.builds(
            PayableFacts,
            approved=st.booleans(),
            cancelled=st.booleans(),
            reserved=st.booleans(),
            requester_id=USERS,
            approver_ids=st.lists(USERS, max_size=3).map(tuple),
            payee_method=st.sampled_from([None, "bank", "cash"]),
            amount_minor=st.sampled_from([None, 1, 150_000]),
            currency=st.sampled_from([None, "KES"]),
        ),
    ),
    payment=mostly(
        None,
        st.builds(PaymentFacts, state=st.sampled_from([str(s) for s in PaymentState]), executions=st.integers(1, 4)),
    ),
    authenticator=mostly(
        authenticator(),
        st.none()
        | st.builds(
            AuthenticatorFacts,
            active=st.booleans(),
            secret=st.sampled_from([None, SECRET]),
            used_steps=st.frozensets(st.sampled_from([STEP - 1, STEP, STEP + 1])),
        ),
    ),
    code=mostly(code(), st.sampled_from([code(-2), code(-1), code(1), code(2), wrong_code()])),
    now=st.just(NOW),
    max_executions=st.integers(1, 4),
)
CODES = st.sampled_from([code(-1), code(0), code(1), wrong_code()])


@settings(max_examples=300)
@given(FACTS, CODES)
def test_a_refusal_never_comes_with_an_outcome_and_never_looks_at_the_code(f: ExecutionFacts, other: str) -> None:
    decision = domain.decide_execution(f)
    assert isinstance(decision, Refusal | CodeRefused | StartExecution)
    if isinstance(decision, Refusal):
        # Refused before the code is checked: no other code could count as a failure.
        assert domain.decide_execution(replace(f, code=other)) == decision
        assert decision.problem.status in (403, 404, 409, 422, 429)


@settings(max_examples=300)
@given(FACTS)
def test_an_outcome_counts_the_code_exactly_once(f: ExecutionFacts) -> None:
    decision = domain.decide_execution(f)
    if isinstance(decision, CodeRefused):
        assert decision.guard == f.guard.after_failure(NOW)
    if isinstance(decision, StartExecution):
        assert decision.step in domain.window_steps(NOW)
        assert f.authenticator is not None
        assert decision.step not in f.authenticator.used_steps
        assert decision.number == (f.payment.executions if f.payment else 0) + 1
        assert decision.create_payment == (f.payment is None)
        assert decision.state is PaymentState.PROCESSING
        assert decision.if_step_taken.guard == f.guard.after_failure(NOW)


@given(FACTS)
def test_who_the_executor_is_comes_first(f: ExecutionFacts) -> None:
    decision = domain.decide_execution(f)
    if not domain.is_treasury(f.executor):
        assert isinstance(decision, Refusal)
        assert decision.rule is PaymentRule.TREASURY_ONLY
    elif f.guard.locked(NOW):
        assert isinstance(decision, Refusal)
        assert decision.rule is PaymentRule.LOCKED_OUT
