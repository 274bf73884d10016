"""Payment runs' rules: which selected requisitions a run pays, and who may authorise it. Pure, no I/O.

A run is many executions started with one code. Each item is checked by the same rules as a
payment paid on its own (:func:`domain.item_refusal`: approved, reserved, not cancelled, a
payee, segregation of duties, not under way or paid, an execution left); an item a rule
stops is left out of the run, with the reason, and the others go ahead. A run whose total is
above the configured amount waits for a second treasury officer (maker-checker), who must be
neither the maker nor a requester or approver of anything in it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from services.payment import domain
from services.payment.domain import PayableFacts, PaymentFacts, PaymentState, Problem, Refusal, RunRule

# A run is what one treasurer reviews on one page: at most this many requisitions.
MAX_ITEMS = 200


class RunState(StrEnum):
    AWAITING_SECOND = "awaiting_second"
    STARTED = "started"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Candidate:
    """A requisition selected for a run, with what payment knows of it and of its payment."""

    requisition_id: uuid.UUID
    requisition: PayableFacts | None
    payment: PaymentFacts | None


@dataclass(frozen=True)
class Taken:
    """An item the run pays: execution ``number`` of its payment, created when ``create_payment``."""

    requisition_id: uuid.UUID
    number: int
    create_payment: bool
    state: PaymentState
    amount_minor: int


@dataclass(frozen=True)
class Left:
    """An item left out of the run: the rule that stops it and the words for it."""

    requisition_id: uuid.UUID
    rule: str
    detail: str


@dataclass(frozen=True)
class Selection:
    """What a run would pay: the items taken (one currency), their total, and those left out."""

    taken: tuple[Taken, ...]
    left: tuple[Left, ...]
    currency: str | None

    @property
    def total_minor(self) -> int:
        return sum(item.amount_minor for item in self.taken)


def select(candidates: Iterable[Candidate], executor_id: str, max_executions: int) -> Selection:
    """Take every candidate the executor may pay now, in the order given; leave out the rest.

    A run is in one currency (the first payable item's): its total and the maker-checker
    threshold compare like with like.
    """
    taken: list[Taken] = []
    left: list[Left] = []
    currency: str | None = None
    for candidate in candidates:
        refusal = domain.item_refusal(candidate.requisition, candidate.payment, executor_id, max_executions)
        if refusal is not None:
            left.append(Left(candidate.requisition_id, str(refusal.rule), refusal.problem.detail))
            continue
        # item_refusal saw to it that there is an approved requisition with amount and currency.
        amount_minor, its_currency = _amount_of(candidate)
        currency = currency or its_currency
        if its_currency != currency:
            left.append(
                Left(candidate.requisition_id, RunRule.ANOTHER_CURRENCY, f"Not in {currency}: a run of its own.")
            )
            continue
        taken.append(_taken(candidate, amount_minor))
    return Selection(tuple(taken), tuple(left), currency)


def _amount_of(candidate: Candidate) -> tuple[int, str]:
    requisition = candidate.requisition
    if requisition is None or requisition.amount_minor is None or requisition.currency is None:
        raise ValueError(f"requisition {candidate.requisition_id} has no amount to pay")
    return requisition.amount_minor, requisition.currency


def _taken(candidate: Candidate, amount_minor: int) -> Taken:
    payment = candidate.payment
    return Taken(
        requisition_id=candidate.requisition_id,
        number=(payment.executions if payment else 0) + 1,
        create_payment=payment is None,
        state=PaymentState.PROCESSING if payment is None else domain.transition(payment.state, PaymentState.PROCESSING),
        amount_minor=amount_minor,
    )


def nothing_to_pay(selection: Selection) -> Refusal | None:
    """Refuses a run none of whose items can be paid (the code is not checked, so not spent)."""
    if selection.taken:
        return None
    reasons = [{"requisition_id": str(item.requisition_id), "rule": item.rule} for item in selection.left]
    return Refusal(
        RunRule.NOTHING_TO_PAY,
        Problem(422, RunRule.NOTHING_TO_PAY, "None of the selected requisitions can be paid now.", {"left": reasons}),
    )


def needs_second_officer(total_minor: int, dual_above_minor: int) -> bool:
    """Above the threshold, one officer's code is not enough."""
    return total_minor > dual_above_minor


def checker_refusal(
    state: str, maker_id: str, checker_id: str, taken: Iterable[tuple[str | None, Sequence[str] | None]]
) -> Refusal | None:
    """Refuses a second authorisation of a run not waiting for one, by its maker, or by someone
    who requested or approved one of its payments (``taken``: each included payment's requester
    and approvers, None where the payment service knows neither)."""
    if state != RunState.AWAITING_SECOND:
        return _refusal(RunRule.NOT_AWAITING, 409, "This run is not waiting for a second authorisation.")
    if checker_id == maker_id:
        return _refusal(RunRule.MAKER_CHECKER, 403, "Another treasury officer must authorise a run you made.")
    breaches = sum(
        1
        for requester_id, approver_ids in taken
        if domain.segregation_breach(checker_id, requester_id or "", approver_ids or ())
    )
    if breaches:
        return _refusal(
            RunRule.SEGREGATION,
            403,
            f"Segregation of duties: you requested or approved {breaches} of this run's payments; "
            "another treasury officer must authorise it.",
        )
    return None


def _refusal(rule: RunRule, status: int, detail: str) -> Refusal:
    return Refusal(rule, Problem(status, str(rule), detail))
