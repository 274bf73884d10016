"""The posting rule (``domain.movement_of``), checked as properties over any mix of transfers."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from services.ledger.domain import Movement, Totals, recompute
from tests.unit.ledger.test_domain import BANK, EXPENSE, FLOAT, move

ACCOUNTS = (BANK, FLOAT, EXPENSE)


@st.composite
def ledgers(draw: st.DrawFn) -> list[Movement]:
    """Fundings, plain transfers and holds between the accounts; each hold then posted, voided or left open."""
    moves: list[Movement] = []
    for _ in range(draw(st.integers(0, 12))):
        debit, credit = draw(st.permutations(ACCOUNTS))[:2]
        amount = draw(st.integers(1, 10_000))
        kind = draw(st.sampled_from(("funding", "reversal", "hold")))
        moves.append(move(kind, debit, credit, amount, pending=kind == "hold"))
    for hold in [m for m in moves if m.pending]:
        ending = draw(st.sampled_from(("post", "void", None)))
        if ending is not None:
            moves.append(move(ending, hold.debit, hold.credit, hold.amount, pending_id=hold.id))
    return draw(st.permutations(moves))


def resolved(moves: list[Movement]) -> dict[uuid.UUID, Totals]:
    """The two-phase semantics stated independently: a hold counts while nothing resolves it,
    a void only releases, everything else is posted (what ``derived_totals`` does in SQL)."""
    done = {m.pending_id for m in moves if m.pending_id is not None}
    totals: dict[uuid.UUID, Totals] = {}
    for m in moves:
        debit, credit = totals.setdefault(m.debit, Totals()), totals.setdefault(m.credit, Totals())
        if m.pending and m.id not in done:
            debit.debits_pending += m.amount
            credit.credits_pending += m.amount
        elif not m.pending and m.kind != "void":
            debit.debits_posted += m.amount
            credit.credits_posted += m.amount
    return totals


@given(ledgers())
def test_the_rule_replayed_in_any_order_equals_the_two_phase_semantics(moves: list[Movement]) -> None:
    assert recompute(moves) == resolved(moves)


@given(ledgers())
def test_debits_equal_credits_posted_and_pending(moves: list[Movement]) -> None:
    totals = recompute(moves).values()
    assert sum(t.debits_posted for t in totals) == sum(t.credits_posted for t in totals)
    assert sum(t.debits_pending for t in totals) == sum(t.credits_pending for t in totals)
    assert all(t.debits_pending >= 0 and t.credits_pending >= 0 for t in totals)
