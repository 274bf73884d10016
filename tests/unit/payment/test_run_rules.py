"""The second officer's checks on a run (``run_rules.checker_refusal``): the run must be waiting,
the checker must not be its maker, nor have asked for or approved any of its payments."""

from __future__ import annotations

from services.payment.domain import RunRule
from services.payment.run_rules import RunState, checker_refusal

TESS, TOM = "tess", "tom"
OTHERS = [("alice", ["bob"]), ("carol", ["dave", "erin"]), (None, None)]  # the last: nothing known of it


def test_a_checker_with_no_part_in_any_payment_may_authorise() -> None:
    assert checker_refusal(RunState.AWAITING_SECOND, TOM, TESS, OTHERS) is None


def test_a_checker_who_asked_for_or_approved_payments_is_refused_with_their_count() -> None:
    taken = [*OTHERS, (TESS, ["bob"]), ("alice", ["dave", TESS]), ("carol", [TESS])]
    refusal = checker_refusal(RunState.AWAITING_SECOND, TOM, TESS, taken)
    assert refusal is not None
    assert (refusal.rule, refusal.problem.status) == (RunRule.SEGREGATION, 403)
    assert "3 of this run's payments" in refusal.problem.detail


def test_the_maker_and_a_run_not_waiting_are_refused_first() -> None:
    maker = checker_refusal(RunState.AWAITING_SECOND, TESS, TESS, OTHERS)
    started = checker_refusal(RunState.STARTED, TOM, TESS, [(TESS, [])])
    assert maker is not None
    assert maker.rule == RunRule.MAKER_CHECKER
    assert started is not None
    assert (started.rule, started.problem.status) == (RunRule.NOT_AWAITING, 409)
