"""Ledger rules: transfer ids, account codes, balances and the float limit. Pure, no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

# Transfer ids are uuid5 of the business event under this namespace: the same event always
# names the same transfer, so doing it twice finds it done.
NAMESPACE = uuid.UUID("6f1c8a52-7d0e-4c1b-9a55-3b7e0f2d9c41")


def transfer_id(kind: str, key: object) -> uuid.UUID:
    """The id of the transfer a business event makes (e.g. ``hold`` of a requisition)."""
    return uuid.uuid5(NAMESPACE, f"{kind}:{key}")


def bank_code(currency: str) -> str:
    return f"bank:{currency}"


def float_code(branch_code: str, currency: str) -> str:
    return f"float:{branch_code}:{currency}"


def expense_code(category: str, branch_code: str, currency: str) -> str:
    return f"expense:{category}:{branch_code}:{currency}"


def over_short_code(branch_code: str, currency: str) -> str:
    return f"over_short:{branch_code}:{currency}"


@dataclass
class Totals:
    """The four totals of an account (TigerBeetle's debits/credits, pending/posted)."""

    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0

    @property
    def balance(self) -> int:
        """Debit-normal balance (an asset: bank, float, expense)."""
        return self.debits_posted - self.credits_posted

    @property
    def held(self) -> int:
        return self.credits_pending

    @property
    def available(self) -> int:
        """What a float can still pay: posted balance less every hold on it."""
        return self.debits_posted - self.credits_posted - self.credits_pending


def overdraws(totals: Totals, credit: int) -> bool:
    """Whether crediting ``credit`` more (posted or held) takes a float below zero."""
    return totals.credits_posted + totals.credits_pending + credit > totals.debits_posted


@dataclass(frozen=True)
class Movement:
    """A transfer as the balance arithmetic sees it."""

    id: uuid.UUID
    debit: uuid.UUID
    credit: uuid.UUID
    amount: int
    kind: str
    pending: bool
    pending_id: uuid.UUID | None


def recompute(movements: Iterable[Movement]) -> dict[uuid.UUID, Totals]:
    """Every account's totals derived from the transfers alone (the check of the cache)."""
    items = list(movements)
    resolved = {m.pending_id for m in items if m.pending_id is not None}
    totals: dict[uuid.UUID, Totals] = {}
    for m in items:
        debit = totals.setdefault(m.debit, Totals())
        credit = totals.setdefault(m.credit, Totals())
        if m.pending:
            if m.id not in resolved:  # still held
                debit.debits_pending += m.amount
                credit.credits_pending += m.amount
        elif m.kind != "void":  # a void only releases its hold; everything else is posted
            debit.debits_posted += m.amount
            credit.credits_posted += m.amount
    return totals
