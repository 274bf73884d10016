"""How this service presents accounts, floats and replenishments (private to the service)."""

from __future__ import annotations

from typing import Any

from services.ledger import domain
from services.ledger.domain import Levels, Totals
from services.ledger.models import Account, Replenishment
from shared.contracts.money import Money


def _money(minor: int, currency: str) -> dict[str, Any]:
    return {"minor_units": minor, "currency": currency}


def account_body(account: Account) -> dict[str, Any]:
    """An account and its four totals."""
    return {
        "code": account.code,
        "kind": account.kind,
        "currency": account.currency,
        "branch_id": account.branch_id,
        "debits_posted": account.debits_posted,
        "credits_posted": account.credits_posted,
        "debits_pending": account.debits_pending,
        "credits_pending": account.credits_pending,
    }


def _level(level: Money | None) -> dict[str, Any] | None:
    return level.to_dict() if level is not None else None


def float_body(account: Account, levels: Levels = domain.NO_LEVELS) -> dict[str, Any]:
    """A float's status: balance, held and available, and its branch's levels in its currency."""
    totals = Totals(account.debits_posted, account.credits_posted, account.debits_pending, account.credits_pending)
    applying = domain.levels_for(levels, account.currency)
    return {
        "account": account.code,
        "branch_id": account.branch_id,
        "branch_code": account.branch_code,
        "balance": _money(totals.balance, account.currency),
        "held": _money(totals.held, account.currency),
        "available": _money(totals.available, account.currency),
        "reorder_level": _level(applying.reorder_level),
        "imprest": _level(applying.imprest),
        "below_reorder_level": domain.below_reorder_level(totals.available, applying.reorder_level),
    }


def replenishment_body(request: Replenishment) -> dict[str, Any]:
    return {
        "id": str(request.id),
        "branch_id": request.branch_id,
        "amount": _money(request.amount_minor, request.currency),
        "status": request.status,
        "requested_by": request.requested_by,
        "requested_at": request.requested_at.isoformat(),
        "comment": request.comment,
        "decided_by": request.decided_by,
        "decided_at": request.decided_at.isoformat() if request.decided_at else None,
        "decision_comment": request.decision_comment,
    }
