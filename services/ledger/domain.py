"""Ledger rules: transfer ids, account codes, balances, the float limit and a float's levels. Pure, no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from shared.contracts.money import Money

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
    """Every account's totals replayed from the transfers alone, by :func:`book`."""
    totals: dict[uuid.UUID, Totals] = {}
    for m in movements:
        book(totals.setdefault(m.debit, Totals()), totals.setdefault(m.credit, Totals()), m.kind, m.pending, m.amount)
    return totals


# The kinds of transfer that resolve a hold (name it by ``pending_id``): a post pays it, a void drops it.
POST, VOID = "post", "void"
RESOLVES_HOLD = (POST, VOID)


def movement_of(kind: str, pending: bool, amount: int) -> tuple[int, int]:
    """The posting rule, the one place it is written: what a transfer adds to its debit
    account's debits and to its credit account's credits, as (posted, pending).

    A hold is pending; a post or a void first releases the hold it resolves (of the same
    amount); a void posts nothing; every other transfer is posted.
    """
    pending_delta = (amount if pending else 0) - (amount if kind in RESOLVES_HOLD else 0)
    posted_delta = 0 if pending or kind == VOID else amount
    return posted_delta, pending_delta


class Booked(Protocol):
    """What carries an account's four totals: :class:`Totals`, or the cached account row."""

    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int


def book(debit: Booked, credit: Booked, kind: str, pending: bool, amount: int) -> None:
    """Apply one transfer to the totals of its two accounts (:func:`movement_of`)."""
    posted, held = movement_of(kind, pending, amount)
    debit.debits_posted += posted
    debit.debits_pending += held
    credit.credits_posted += posted
    credit.credits_pending += held


# -- a float's levels (BranchDirectoryUpdated) -----------------------------------------


class LevelsError(ValueError):
    """Levels no float can keep: mixed currencies, or an imprest below the reorder level."""


@dataclass(frozen=True)
class Levels:
    """A branch float's reorder level (below it the float is low) and imprest (what a
    replenishment tops it up to); either may be unset."""

    reorder_level: Money | None = None
    imprest: Money | None = None


NO_LEVELS = Levels()


def check_levels(levels: Levels) -> Levels:
    """The levels if a float can keep them, else :class:`LevelsError` naming the rule broken."""
    reorder, imprest = levels.reorder_level, levels.imprest
    if reorder is None or imprest is None:
        return levels
    if reorder.currency != imprest.currency:
        raise LevelsError(f"reorder level ({reorder.currency}) and imprest ({imprest.currency}) differ in currency")
    if imprest.minor_units < reorder.minor_units:
        raise LevelsError(f"imprest {imprest} is below the reorder level {reorder}")
    return levels


def levels_for(levels: Levels, currency: str) -> Levels:
    """The levels that apply to a float of ``currency``: a level set in another currency does not."""
    return Levels(
        levels.reorder_level if levels.reorder_level and levels.reorder_level.currency == currency else None,
        levels.imprest if levels.imprest and levels.imprest.currency == currency else None,
    )


def below_reorder_level(available: int, reorder_level: Money | None) -> bool:
    """Whether a float's available minor units are below its reorder level (never, with none set)."""
    return reorder_level is not None and available < reorder_level.minor_units
