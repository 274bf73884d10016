"""The second factor, decided from plain facts: who has an authenticator, a sign-in's code, a reset."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.payment import domain
from services.payment.domain import (
    AcceptSignIn,
    AuthenticatorFacts,
    CodeRefused,
    Guard,
    OtpRejection,
    Problem,
    Refusal,
    SecondFactorRule,
    SignInFacts,
)
from shared.contracts.envelope import Actor
from shared.contracts.roles import ROLES, SECOND_FACTOR_ROLES

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
# 10 s into a 30 s step, as in test_domain.
NOW = datetime(2026, 3, 1, 9, 0, 10, tzinfo=UTC)
STEP = domain.time_step(NOW)
USER = "fay"

ROLES_ONLY = Problem(
    403,
    "second-factor-roles-only",
    "Only admin or cfo or finance or treasury users have an authenticator; your roles sign in without one.",
)


# -- factories --------------------------------------------------------------------------


def code(offset: int = 0) -> str:
    """The code an authenticator with SECRET shows ``offset`` steps from now."""
    return domain.code_at_step(SECRET, STEP + offset)


def wrong_code() -> str:
    near = {code(offset) for offset in range(-3, 4)}
    return next(c for c in (f"{n:06d}" for n in range(10**6)) if c not in near)


def user(*roles: str, user_id: str = USER) -> Actor:
    return Actor(user_id, user_id.title(), roles=frozenset(roles or ("finance",)))


def authenticator(**changes: object) -> AuthenticatorFacts:
    return replace(AuthenticatorFacts(active=True, secret=SECRET, used_steps=frozenset()), **changes)


def locked(minutes: int = 10) -> Guard:
    return Guard(0, NOW + timedelta(minutes=minutes))


def sign_in(**changes: object) -> SignInFacts:
    """Facts of a sign-in a good code passes; ``changes`` break one thing or another."""
    return replace(
        SignInFacts(actor=user(), guard=Guard(), authenticator=authenticator(), code=code(), now=NOW), **changes
    )


# -- who has an authenticator -----------------------------------------------------------


@pytest.mark.parametrize("role", sorted(SECOND_FACTOR_ROLES))
def test_every_second_factor_role_may_enrol(role: str) -> None:
    assert domain.second_factor_refusal(user(role)) is None


@pytest.mark.parametrize("role", sorted(set(ROLES) - SECOND_FACTOR_ROLES))
def test_other_roles_are_refused_in_plain_words(role: str) -> None:
    assert domain.second_factor_refusal(user(role)) == Refusal(SecondFactorRule.SECOND_FACTOR_ROLES_ONLY, ROLES_ONLY)


def test_one_second_factor_role_among_others_is_enough() -> None:
    assert domain.second_factor_refusal(user("staff", "auditor", "cfo")) is None


def test_paying_stays_treasury_only() -> None:
    refusal = domain.treasury_refusal(user("finance", "cfo", "admin"))
    assert refusal == Refusal(
        domain.PaymentRule.TREASURY_ONLY, Problem(403, "treasury-only", "Only treasury executes payments.")
    )
    assert domain.treasury_refusal(user("treasury")) is None


# -- signing in: refusals ---------------------------------------------------------------

LOCKED_UNTIL = (NOW + timedelta(minutes=10)).isoformat()
NOT_ENROLLED = Problem(409, "otp-not-enrolled", "Enrol and activate an authenticator first.")

# (the facts' changes, the rule, the problem), the rules in the order they are checked.
SIGN_IN_REFUSALS: list[tuple[dict[str, object], SecondFactorRule, Problem]] = [
    ({"actor": user("staff")}, SecondFactorRule.SECOND_FACTOR_ROLES_ONLY, ROLES_ONLY),
    ({"actor": user("auditor", "branch_manager")}, SecondFactorRule.SECOND_FACTOR_ROLES_ONLY, ROLES_ONLY),
    ({"authenticator": None}, SecondFactorRule.OTP_NOT_ENROLLED, NOT_ENROLLED),
    ({"authenticator": authenticator(active=False)}, SecondFactorRule.OTP_NOT_ENROLLED, NOT_ENROLLED),
    (
        {"guard": locked(10)},
        SecondFactorRule.LOCKED_OUT,
        Problem(
            429,
            "otp-locked-out",
            "Too many wrong codes: signing in and paying are locked for you for now.",
            {"retry_after": 600, "locked_until": LOCKED_UNTIL},
        ),
    ),
    ({"authenticator": authenticator(secret=None)}, SecondFactorRule.OTP_UNREADABLE, domain.UNREADABLE.problem),
]


@pytest.mark.parametrize(
    ("changes", "rule", "problem"),
    SIGN_IN_REFUSALS,
    ids=[f"{rule}-{i}" for i, (_, rule, _) in enumerate(SIGN_IN_REFUSALS)],
)
def test_each_sign_in_rule_refuses_with_the_problem_the_api_answers(
    changes: dict[str, object], rule: SecondFactorRule, problem: Problem
) -> None:
    assert domain.decide_sign_in(sign_in(**changes)) == Refusal(rule, problem)


def test_the_lockout_is_answered_as_a_payments_is_but_for_its_words() -> None:
    at_sign_in = domain.decide_sign_in(sign_in(guard=locked(10)))
    paying = domain.decide_execution(
        domain.ExecutionFacts(
            executor=user("treasury"),
            guard=locked(10),
            requisition=None,
            payment=None,
            authenticator=None,
            code=code(),
            now=NOW,
            max_executions=3,
        )
    )
    assert isinstance(at_sign_in, Refusal)
    assert isinstance(paying, Refusal)
    same = ("status", "code", "extensions")
    assert [getattr(at_sign_in.problem, a) for a in same] == [getattr(paying.problem, a) for a in same]


# Each step breaks one more rule than the facts before it; the earliest rule broken wins.
Break = Callable[[SignInFacts], SignInFacts]


def _authenticator(f: SignInFacts, **changes: object) -> SignInFacts:
    return replace(f, authenticator=replace(f.authenticator, **changes))  # type: ignore[arg-type]


SIGN_IN_BREAKS: list[tuple[SecondFactorRule, Break]] = [
    (SecondFactorRule.SECOND_FACTOR_ROLES_ONLY, lambda f: replace(f, actor=user("staff"))),
    (SecondFactorRule.OTP_NOT_ENROLLED, lambda f: _authenticator(f, active=False)),
    (SecondFactorRule.LOCKED_OUT, lambda f: replace(f, guard=locked())),
    (SecondFactorRule.OTP_UNREADABLE, lambda f: _authenticator(f, secret=None)),
]


@pytest.mark.parametrize("first", range(len(SIGN_IN_BREAKS)), ids=[str(rule) for rule, _ in SIGN_IN_BREAKS])
def test_sign_in_rules_are_checked_in_order_and_the_code_last(first: int) -> None:
    broken = sign_in(code=wrong_code())
    for _, breaks in SIGN_IN_BREAKS[first:]:
        broken = breaks(broken)
    decision = domain.decide_sign_in(broken)
    assert isinstance(decision, Refusal)
    assert decision.rule is SIGN_IN_BREAKS[first][0]


def test_every_sign_in_rule_has_a_refusal_above() -> None:
    sign_in_rules = {rule for _, rule, _ in SIGN_IN_REFUSALS}
    reset_rules = {SecondFactorRule.NOT_YOUR_AUTHENTICATOR, SecondFactorRule.NO_AUTHENTICATOR}
    assert sign_in_rules | reset_rules == set(SecondFactorRule)


# -- signing in: outcomes ---------------------------------------------------------------


def reused_after(guard: Guard) -> CodeRefused:
    """What a spent code comes to at sign-in for a user with ``guard`` (not locked by it)."""
    after = guard.after_failure(NOW)
    return CodeRefused(
        OtpRejection.REUSED,
        after,
        Problem(
            409,
            "otp-already-used",
            "That code was already used; wait for the next one.",
            {"attempts_left": after.attempts_left},
        ),
    )


def test_a_good_code_is_accepted_for_its_step() -> None:
    assert domain.decide_sign_in(sign_in()) == AcceptSignIn(
        step=STEP, clear_failures=False, if_step_taken=reused_after(Guard())
    )


@pytest.mark.parametrize("offset", [-1, 1])
def test_a_code_of_a_neighbouring_step_is_accepted_for_that_step(offset: int) -> None:
    decision = domain.decide_sign_in(sign_in(code=code(offset)))
    assert isinstance(decision, AcceptSignIn)
    assert decision.step == STEP + offset


@pytest.mark.parametrize("offset", [-2, 2])
def test_a_code_outside_the_window_is_wrong(offset: int) -> None:
    decision = domain.decide_sign_in(sign_in(code=code(offset)))
    assert isinstance(decision, CodeRefused)
    assert decision.rejection is OtpRejection.INVALID


def test_a_good_code_ends_a_run_of_wrong_ones() -> None:
    decision = domain.decide_sign_in(sign_in(guard=Guard(3)))
    assert decision == AcceptSignIn(step=STEP, clear_failures=True, if_step_taken=reused_after(Guard(3)))


def test_a_wrong_code_is_counted_and_answered_as_a_payments_is() -> None:
    assert domain.decide_sign_in(sign_in(code=wrong_code())) == CodeRefused(
        OtpRejection.INVALID, Guard(1), Problem(422, "otp-invalid", "That code is not valid.", {"attempts_left": 4})
    )


def test_a_spent_step_is_counted_and_answered_reused() -> None:
    spent = authenticator(used_steps=frozenset({STEP}))
    assert domain.decide_sign_in(sign_in(authenticator=spent)) == reused_after(Guard())


def test_the_fifth_wrong_code_locks_signing_in_and_paying() -> None:
    until = NOW + domain.LOCKOUT
    assert domain.decide_sign_in(sign_in(guard=Guard(4), code=wrong_code())) == CodeRefused(
        OtpRejection.INVALID,
        Guard(0, until),
        Problem(
            429,
            "otp-locked-out",
            "Wrong code, 5 in a row: signing in and paying are locked for 15 minutes.",
            {"retry_after": 900, "locked_until": until.isoformat()},
        ),
    )


def test_a_twin_spending_the_step_of_the_fifth_try_locks_too() -> None:
    decision = domain.decide_sign_in(sign_in(guard=Guard(4)))
    assert isinstance(decision, AcceptSignIn)
    assert decision.if_step_taken.guard == Guard(0, NOW + domain.LOCKOUT)
    assert decision.if_step_taken.problem.code == "otp-locked-out"


def test_a_lock_that_ran_out_refuses_nothing() -> None:
    assert isinstance(domain.decide_sign_in(sign_in(guard=Guard(0, NOW))), AcceptSignIn)


# -- signing in: properties -------------------------------------------------------------


def mostly(good: object, other: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Mostly ``good``, so facts that pass every rule are drawn often too, not only refusals."""
    return st.one_of(st.just(good), st.just(good), st.just(good), other)


SIGN_IN_FACTS = st.builds(
    SignInFacts,
    actor=st.frozensets(st.sampled_from(ROLES), min_size=1, max_size=3).map(lambda roles: user(*roles)),
    guard=st.builds(
        Guard,
        failures=st.integers(0, domain.MAX_CONSECUTIVE_FAILURES - 1),
        locked_until=st.sampled_from([None, None, NOW - timedelta(minutes=1), NOW, NOW + timedelta(minutes=5)]),
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
)
CODES = st.sampled_from([code(-1), code(0), code(1), wrong_code()])


@settings(max_examples=300)
@given(SIGN_IN_FACTS, CODES)
def test_a_sign_in_refusal_never_looks_at_the_code(f: SignInFacts, other: str) -> None:
    decision = domain.decide_sign_in(f)
    if isinstance(decision, Refusal):
        assert domain.decide_sign_in(replace(f, code=other)) == decision
        assert decision.problem.status in (403, 409, 429)


@settings(max_examples=300)
@given(SIGN_IN_FACTS)
def test_a_sign_in_counts_the_code_exactly_once(f: SignInFacts) -> None:
    decision = domain.decide_sign_in(f)
    if isinstance(decision, CodeRefused):
        assert decision.guard == f.guard.after_failure(NOW)
    if isinstance(decision, AcceptSignIn):
        assert f.authenticator is not None
        assert f.authenticator.secret is not None
        assert domain.check_code(f.authenticator.secret, f.code, NOW, f.authenticator.used_steps).step == decision.step
        assert decision.step in domain.window_steps(NOW)
        assert decision.step not in f.authenticator.used_steps
        assert decision.clear_failures == bool(f.guard.failures)
        assert decision.if_step_taken.guard == f.guard.after_failure(NOW)


@given(SIGN_IN_FACTS)
def test_only_an_active_unlocked_second_factor_user_is_ever_accepted(f: SignInFacts) -> None:
    accepted = isinstance(domain.decide_sign_in(f), AcceptSignIn)
    if accepted:
        assert f.actor.roles & SECOND_FACTOR_ROLES
        assert f.authenticator is not None
        assert f.authenticator.active
        assert not f.guard.locked(NOW)


@given(SIGN_IN_FACTS)
def test_who_the_user_is_comes_first(f: SignInFacts) -> None:
    decision = domain.decide_sign_in(f)
    if not f.actor.roles & SECOND_FACTOR_ROLES:
        assert decision == Refusal(SecondFactorRule.SECOND_FACTOR_ROLES_ONLY, ROLES_ONLY)


# -- resetting --------------------------------------------------------------------------

NOT_YOURS = Refusal(
    SecondFactorRule.NOT_YOUR_AUTHENTICATOR,
    Problem(403, "not-your-authenticator", "Only an administrator resets someone else's authenticator."),
)
NONE_TO_RESET = Refusal(
    SecondFactorRule.NO_AUTHENTICATOR, Problem(404, "no-authenticator", "This user has no authenticator to reset.")
)


@pytest.mark.parametrize(
    ("actor", "target", "enrolled", "refusal"),
    [
        (user("admin", user_id="ada"), USER, True, None),
        (user("admin", user_id="ada"), USER, False, NONE_TO_RESET),
        (user("admin", user_id="ada"), "ada", True, None),
        (user("finance"), USER, True, None),
        (user("treasury"), USER, False, NONE_TO_RESET),
        (user("finance"), "someone-else", True, NOT_YOURS),
        (user("cfo", "treasury"), "someone-else", False, NOT_YOURS),
        (user("staff"), USER, True, Refusal(SecondFactorRule.SECOND_FACTOR_ROLES_ONLY, ROLES_ONLY)),
        (user("staff"), "someone-else", True, NOT_YOURS),
        (user("auditor"), USER, False, Refusal(SecondFactorRule.SECOND_FACTOR_ROLES_ONLY, ROLES_ONLY)),
    ],
    ids=[
        "admin-anyone",
        "admin-none-to-reset",
        "admin-own",
        "self",
        "self-none-to-reset",
        "someone-elses",
        "someone-elses-not-enrolled",
        "self-without-a-second-factor-role",
        "staff-someone-elses",
        "self-auditor-not-enrolled",
    ],
)
def test_who_may_reset_an_authenticator(actor: Actor, target: str, enrolled: bool, refusal: Refusal | None) -> None:
    assert domain.reset_refusal(actor, target, enrolled=enrolled) == refusal


@given(
    roles=st.frozensets(st.sampled_from(ROLES), min_size=1, max_size=3),
    own=st.booleans(),
    enrolled=st.booleans(),
)
def test_a_reset_is_allowed_exactly_to_an_admin_or_a_second_factor_user_for_their_own(
    roles: frozenset[str], own: bool, enrolled: bool
) -> None:
    actor = user(*roles)
    refusal = domain.reset_refusal(actor, USER if own else "someone-else", enrolled=enrolled)
    may = "admin" in roles or (own and bool(roles & SECOND_FACTOR_ROLES))
    if not may:
        assert refusal is not None
        assert refusal.problem.status == 403
        # Refused for who they are: the answer does not tell whether the user has an authenticator.
        assert domain.reset_refusal(actor, USER if own else "someone-else", enrolled=not enrolled) == refusal
    else:
        assert refusal == (None if enrolled else NONE_TO_RESET)
