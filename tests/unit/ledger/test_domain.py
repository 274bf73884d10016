from __future__ import annotations

import uuid

from services.ledger.domain import Movement, Totals, overdraws, recompute, transfer_id

BANK, FLOAT, EXPENSE = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def move(
    kind: str,
    debit: uuid.UUID,
    credit: uuid.UUID,
    amount: int,
    *,
    pending: bool = False,
    pending_id: uuid.UUID | None = None,
) -> Movement:
    return Movement(uuid.uuid4(), debit, credit, amount, kind, pending, pending_id)


def test_transfer_ids_derive_from_the_business_event() -> None:
    rid = uuid.uuid4()
    assert transfer_id("hold", rid) == transfer_id("hold", rid)
    assert transfer_id("hold", rid) != transfer_id("post", rid)
    assert transfer_id("hold", rid) != transfer_id("hold", uuid.uuid4())


def test_available_counts_holds() -> None:
    totals = Totals(debits_posted=10_000, credits_posted=2_000, credits_pending=3_000)
    assert totals.balance == 8_000
    assert totals.held == 3_000
    assert totals.available == 5_000
    assert not overdraws(totals, 5_000)
    assert overdraws(totals, 5_001)


def test_recompute_follows_two_phase_transfers() -> None:
    funding = move("funding", FLOAT, BANK, 10_000)
    held = move("hold", EXPENSE, FLOAT, 700, pending=True)
    posted_hold = move("hold", EXPENSE, FLOAT, 300, pending=True)
    voided_hold = move("hold", EXPENSE, FLOAT, 200, pending=True)
    post = move("post", EXPENSE, FLOAT, 300, pending_id=posted_hold.id)
    void = move("void", EXPENSE, FLOAT, 200, pending_id=voided_hold.id)
    totals = recompute([funding, held, posted_hold, voided_hold, post, void])
    assert totals[FLOAT] == Totals(debits_posted=10_000, credits_posted=300, debits_pending=0, credits_pending=700)
    assert totals[EXPENSE] == Totals(debits_posted=300, credits_posted=0, debits_pending=700, credits_pending=0)
    assert totals[BANK] == Totals(credits_posted=10_000)
    assert totals[FLOAT].available == 10_000 - 300 - 700


def test_debits_equal_credits_whatever_the_mix() -> None:
    moves = [move("funding", FLOAT, BANK, 5_000), move("hold", EXPENSE, FLOAT, 1_000, pending=True)]
    moves.append(move("post", EXPENSE, FLOAT, 1_000, pending_id=moves[1].id))
    moves.append(move("reversal", FLOAT, EXPENSE, 1_000))
    totals = recompute(moves).values()
    assert sum(t.debits_posted for t in totals) == sum(t.credits_posted for t in totals)
    assert sum(t.debits_pending for t in totals) == sum(t.credits_pending for t in totals)
